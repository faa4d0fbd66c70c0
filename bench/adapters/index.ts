import { AdapterName, BrokerAdapter } from './types';

/**
 * Loads an adapter by name. The RabbitMQ and BullMQ adapters load their client packages only
 * here, so a run against Jobatator alone needs neither package.
 */
export async function loadAdapter(name: AdapterName): Promise<BrokerAdapter> {
  switch (name) {
    case 'jobatator':
      return (await import('./jobatator')).jobatatorAdapter;
    case 'ceiling':
      return (await import('./jobatator')).ceilingAdapter;
    case 'beanstalkd':
      return (await import('./beanstalkd')).beanstalkdAdapter;
    case 'rabbitmq':
      return (await import('./rabbitmq')).rabbitmqAdapter;
    case 'bullmq':
      return (await import('./bullmq')).bullmqAdapter;
  }
}
