/** Structured JSON logs and CloudWatch EMF metrics (Powertools for AWS Lambda). */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

const SERVICE = 's3-pdf-render';

export const logger = new Logger({ serviceName: SERVICE });
export const metrics = new Metrics({ namespace: SERVICE, serviceName: SERVICE });
export { MetricUnit };

/** Counts one failure by its stable code, as its own EMF line so the code is a dimension. */
export function countFailure(code: string, kind: 'document' | 'page' | 'transient'): void {
  const single = metrics.singleMetric();
  single.addDimension('code', code);
  single.addDimension('kind', kind);
  single.addMetric('Failures', MetricUnit.Count, 1);
}
