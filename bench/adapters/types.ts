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
  close(): Promise<void>;
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
