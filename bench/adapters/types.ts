/**
 * The client side of one broker. The load generator runs the same code for every broker and
 * calls only these methods, so a figure differs between brokers by the broker and its
 * client library alone.
 */

/** Address and login of a broker. */
export interface Endpoint {
  host: string;
  port: number;
  user?: string;
  password?: string;
}

/** One queue, and for Jobatator the group it belongs to. */
export interface Lane {
  queue: string;
  group?: string;
}

/** Gets the index and publish time of each delivered job; the adapter finishes the job after it returns. */
export type DeliveryHandler = (index: number, sentMicros: number) => void;

export interface PublisherClient {
  /** Publishes one job and calls `done` once the broker confirmed it, with an error if it rejected it. */
  publish(payload: string, done: (error: Error | null) => void): void;
  /** Publishing with a per-job delay, absent for a broker that has none, such as RabbitMQ without a plugin. */
  delayed?: DelayedPublisher;
  close(): Promise<void>;
}

/** A publisher of jobs that the broker keeps for a given time before it delivers them. */
export interface DelayedPublisher {
  /** Unit of the delays the broker takes, in milliseconds: 1000 for beanstalkd's whole seconds. */
  stepMs: number;
  /**
   * Publishes one job to be delivered `delayMs` after its publish, and calls `done` as
   * `publish` does. `delayMs` must be a whole multiple of `stepMs`. The broker counts the
   * delay from its own reading of the clock: Jobatator and beanstalkd when they handle the
   * request, BullMQ's client when it creates the job.
   */
  publish(payload: string, delayMs: number, done: (error: Error | null) => void): void;
}

export interface WorkerClient {
  close(): Promise<void>;
}

export interface BrokerAdapter {
  openPublisher(endpoint: Endpoint, lane: Lane): Promise<PublisherClient>;
  /**
   * Subscribes to a queue, holding up to `prefetch` unfinished jobs, and finishes every job
   * it gets. `onError` gets failures that happen after the subscription.
   */
  openWorker(endpoint: Endpoint, lane: Lane, prefetch: number, onJob: DeliveryHandler, onError: (error: Error) => void): Promise<WorkerClient>;
  /** Deletes the queue and its jobs, so a later run starts empty. */
  deleteQueue(endpoint: Endpoint, lane: Lane): Promise<void>;
}

export const ADAPTER_NAMES = ['jobatator', 'ceiling', 'beanstalkd', 'rabbitmq', 'bullmq'] as const;
export type AdapterName = (typeof ADAPTER_NAMES)[number];
