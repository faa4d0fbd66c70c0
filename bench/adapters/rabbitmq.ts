/**
 * RabbitMQ through amqplib, set up for jobs that must not be lost: a durable classic queue,
 * persistent messages, publisher confirms, manual acknowledgements and a prefetch limit.
 */
import amqp from 'amqplib';
import { readPayloadFields } from '../payload';
import { BrokerAdapter, DeliveryHandler, Endpoint, Lane, PublisherClient, WorkerClient } from './types';

const QUEUE_OPTIONS = { durable: true, arguments: { 'x-queue-type': 'classic' } };

function connect(endpoint: Endpoint): Promise<amqp.ChannelModel> {
  return amqp.connect({
    protocol: 'amqp',
    hostname: endpoint.host,
    port: endpoint.port,
    username: endpoint.user ?? 'guest',
    password: endpoint.password ?? 'guest',
  });
}

export const rabbitmqAdapter: BrokerAdapter = {
  async openPublisher(endpoint: Endpoint, lane: Lane): Promise<PublisherClient> {
    const connection = await connect(endpoint);
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(lane.queue, QUEUE_OPTIONS);
    return {
      publish(payload, done) {
        // The callback runs when the broker confirms (ack) or rejects (nack) the message.
        channel.sendToQueue(lane.queue, Buffer.from(payload), { persistent: true }, (error: unknown) => {
          done(error ? new Error(`RabbitMQ rejected a message: ${String(error)}`) : null);
        });
      },
      async close() {
        await connection.close();
      },
    };
  },

  async openWorker(endpoint: Endpoint, lane: Lane, prefetch: number, onJob: DeliveryHandler, onError): Promise<WorkerClient> {
    const connection = await connect(endpoint);
    connection.on('error', onError);
    const channel = await connection.createChannel();
    await channel.assertQueue(lane.queue, QUEUE_OPTIONS);
    await channel.prefetch(prefetch);
    await channel.consume(
      lane.queue,
      (message) => {
        if (message === null) {
          onError(new Error(`RabbitMQ cancelled the consumer of ${lane.queue}`));
          return;
        }
        const fields = readPayloadFields(message.content.toString('latin1'));
        onJob(fields.index, fields.sentMicros);
        channel.ack(message);
      },
      { noAck: false },
    );
    return {
      async close() {
        connection.off('error', onError);
        await connection.close();
      },
    };
  },

  async deleteQueue(endpoint, lane) {
    const connection = await connect(endpoint);
    try {
      const channel = await connection.createChannel();
      await channel.deleteQueue(lane.queue);
    } finally {
      await connection.close();
    }
  },
};
