/**
 * Structured JSON logs and CloudWatch EMF metrics (Powertools for AWS Lambda), and the one home
 * of the render and page functions' metric names: the template's alarms and dashboard use these
 * (test/operations.test.ts holds them to it).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

const SERVICE = 's3-pdf-render';

/** The EMF namespace, and the `service` dimension Powertools adds to every metric. */
export const METRIC_NAMESPACE = SERVICE;
export const SERVICE_DIMENSION = { service: SERVICE } as const;

/** The render function's metrics. Each carries only the `service` dimension unless DIMENSIONS says otherwise. */
export const METRIC = {
  /** One per page stored. */
  pagesRendered: 'PagesRendered',
  bytesOut: 'BytesOut',
  /** Drawing and encoding time of one page (ms). */
  renderMs: 'RenderMs',
  /** One per failure, by its stable code (countFailure). */
  failures: 'Failures',
  /** A PutEvents attempt for a completion event that failed (it is retried). */
  eventPutFailures: 'CompletionEventPutFailures',
  /** A completion event not sent by the invocation that committed (attempts or time ran out): the message is retried, and its redelivery announces. */
  eventsLost: 'CompletionEventsLost',
  /**
   * An EventBridge key holding %XX, by the form that named an object (`form`: `as-given`,
   * `decoded`, or `neither`): whether EventBridge percent-encodes keys is undocumented, and the
   * first deployment's counts tell (docs/contract.md, "Work distribution").
   */
  eventBridgeKeyForm: 'EventBridgeKeyForm',
  /** The page function (lib/on-demand/): a request answered from a cached variant or the eager render's page. */
  cacheHit: 'CacheHit',
  /** The page function: a request that drew its page. */
  cacheMiss: 'CacheMiss',
  /** The page function: one request, from event to answer (ms). */
  pageLatency: 'PageLatency',
  /**
   * The page function: a request answered 422, the document's own problem (ENCRYPTED, TOO_LARGE…),
   * by its code. Its own metric: a viewer asking again for a broken PDF must not trip the render
   * function's FailuresAlarm.
   */
  pageDocumentErrors: 'PageDocumentErrors',
  /** The page function: a request answered 5xx (PageServerErrorsAlarm). */
  pageServerErrors: 'PageServerErrors',
} as const;

/** The dimension names of each metric, in the order Powertools writes them. */
export const DIMENSIONS: Record<(typeof METRIC)[keyof typeof METRIC], readonly string[]> = {
  PagesRendered: ['service'],
  BytesOut: ['service'],
  RenderMs: ['service'],
  Failures: ['service', 'code', 'kind'],
  CompletionEventPutFailures: ['service'],
  CompletionEventsLost: ['service'],
  EventBridgeKeyForm: ['service', 'form'],
  CacheHit: ['service'],
  CacheMiss: ['service'],
  PageLatency: ['service'],
  PageDocumentErrors: ['service', 'code'],
  PageServerErrors: ['service'],
};

export const logger = new Logger({ serviceName: SERVICE });
export const metrics = new Metrics({ namespace: METRIC_NAMESPACE, serviceName: SERVICE });
export { MetricUnit };

/** The page function's 422: counted by its stable code, as its own EMF line so the code is a dimension. */
export function countPageDocumentError(code: string): void {
  const single = metrics.singleMetric();
  single.addDimension('code', code);
  single.addMetric(METRIC.pageDocumentErrors, MetricUnit.Count, 1);
}

/** Which form of an EventBridge key holding %XX named an object, as its own EMF line so the form is a dimension. */
export function countEventBridgeKeyForm(form: 'as-given' | 'decoded' | 'neither'): void {
  const single = metrics.singleMetric();
  single.addDimension('form', form);
  single.addMetric(METRIC.eventBridgeKeyForm, MetricUnit.Count, 1);
}

/** Counts one failure by its stable code, as its own EMF line so the code is a dimension. */
export function countFailure(code: string, kind: 'document' | 'page' | 'transient'): void {
  const single = metrics.singleMetric();
  single.addDimension('code', code);
  single.addDimension('kind', kind);
  single.addMetric(METRIC.failures, MetricUnit.Count, 1);
}
