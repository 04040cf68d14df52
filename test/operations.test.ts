/**
 * Operating it (docs/operate.md): the template's alarms and dashboard against the metrics the
 * code writes. lib/observability.ts is the one home of the names, namespace and dimensions; the
 * code is checked to write exactly those (its EMF lines, from a child process with metrics on),
 * and every alarm and dashboard widget on the function's own metrics is checked against them.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIMENSIONS, METRIC, METRIC_NAMESPACE, SERVICE_DIMENSION } from '../lib/observability.js';
import { conditionHolds, loadTemplate, localContext, resolvedEnvironment, resolveIntrinsics, ROOT, templateFunction, type Template } from '../tools/template.js';

const template: Template = loadTemplate();
const OWN_NAMES = new Set<string>(Object.values(METRIC));
type Props = Record<string, unknown>;

const resources = (type: string): [string, { Properties: Props; Condition?: string }][] =>
  Object.entries(template.Resources).filter(([, r]) => r.Type === type) as [string, { Properties: Props; Condition?: string }][];
const alarms = resources('AWS::CloudWatch::Alarm');

/** `SCHEMA("ns", d1, d2)` or `{"ns",d1,d2}`: the namespace and the dimension names. */
function schemaOf(text: string): { namespace: string; dimensions: string[] } {
  const match = /SCHEMA\(([^)]*)\)/.exec(text) ?? /\{([^}]*)\}/.exec(text);
  if (!match) throw new Error(`no schema in ${text}`);
  const [namespace, ...dimensions] = match[1]!.split(',').map((p) => p.trim().replace(/^\\?"|\\?"$/g, ''));
  return { namespace: namespace!, dimensions };
}

/** Checks one use of the function's own metric: a known name, and exactly the dimensions the code writes. */
function expectOwnMetric(where: string, name: string, dimensions: string[]): void {
  expect(OWN_NAMES, `${where}: ${name} is not a metric lib/observability.ts names`).toContain(name);
  expect([...dimensions].sort(), `${where}: dimensions of ${name}`).toEqual([...DIMENSIONS[name as keyof typeof DIMENSIONS]].sort());
}

/** The dashboard body with its ${…} substitutions replaced by their names (the JSON around them is what is checked). */
function dashboardBody(): { widgets: { properties: { title: string; metrics: unknown[][] } }[] } {
  const [, dashboard] = resources('AWS::CloudWatch::Dashboard')[0]!;
  const body = (dashboard.Properties['DashboardBody'] as { 'Fn::Sub': string })['Fn::Sub'];
  return JSON.parse(body.replace(/\$\{([^}]+)\}/g, (_m, name: string) => (name === 'QueueAgeAlarmSeconds' || name === 'MaxConcurrency' ? '1' : name)));
}

/** Each metric row of a widget as [namespace, name, dimension pairs], "..." rows expanded, and each expression. */
function widgetMetrics(rows: unknown[][]): { metrics: { namespace: string; name: string; dimensions: Record<string, string> }[]; expressions: string[] } {
  const metrics = [];
  const expressions: string[] = [];
  let previous: string[] = [];
  for (const row of rows) {
    const plain = row.filter((item): item is string => typeof item === 'string');
    const options = row.find((item) => typeof item === 'object') as { expression?: string } | undefined;
    if (options?.expression) {
      expressions.push(options.expression);
      continue;
    }
    const full = plain[0] === '...' ? previous : plain;
    previous = full;
    const [namespace, name, ...pairs] = full;
    const dimensions: Record<string, string> = {};
    for (let i = 0; i < pairs.length; i += 2) dimensions[pairs[i]!] = pairs[i + 1]!;
    metrics.push({ namespace: namespace!, name: name!, dimensions });
  }
  return { metrics, expressions };
}

describe('metric names have one source of truth', () => {
  it('the code writes its metrics with the namespace and dimensions lib/observability.ts declares', () => {
    // A child process with metrics on (the test run turns them off): each of the render function's metrics, as the code writes it.
    const script = `
      import { countEventBridgeKeyForm, countFailure, countPageDocumentError, METRIC, metrics, MetricUnit } from './lib/observability.ts';
      countFailure('NOT_PDF', 'document');
      countPageDocumentError('ENCRYPTED');
      countEventBridgeKeyForm('decoded');
      const own = [METRIC.failures, METRIC.pageDocumentErrors, METRIC.eventBridgeKeyForm];
      for (const name of Object.values(METRIC)) if (!own.includes(name)) metrics.addMetric(name, MetricUnit.Count, 1);
      metrics.publishStoredMetrics();`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_DEV: 'false', NODE_NO_WARNINGS: '1' },
      encoding: 'utf8',
    });
    expect(result.status, result.stderr).toBe(0);
    const written = new Map<string, string[]>();
    for (const line of result.stdout.split('\n').filter((l) => l.includes('"_aws"'))) {
      const emf = JSON.parse(line) as { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] } } & Record<string, unknown>;
      for (const directive of emf._aws.CloudWatchMetrics) {
        expect(directive.Namespace).toBe(METRIC_NAMESPACE);
        expect(emf['service']).toBe(SERVICE_DIMENSION.service);
        for (const metric of directive.Metrics) written.set(metric.Name, directive.Dimensions[0]!);
      }
    }
    expect([...written.keys()].sort()).toEqual([...OWN_NAMES].sort());
    for (const [name, dimensions] of written) expect(dimensions, name).toEqual(DIMENSIONS[name as keyof typeof DIMENSIONS]);
  });

  it('the render function, the events module and the page function name their metrics through METRIC, never a string of their own', () => {
    for (const dir of ['lib/render-function', 'lib/events', 'lib/on-demand']) {
      for (const file of readdirSync(join(ROOT, dir))) {
        const source = readFileSync(join(ROOT, dir, file), 'utf8');
        expect(source, `${dir}/${file}`).not.toMatch(/addMetric\(\s*['"`]/);
      }
    }
  });
});

describe('alarms', () => {
  it('every alarm on the function\'s own metrics uses its namespace, names and dimensions', () => {
    let checked = 0;
    for (const [id, alarm] of alarms) {
      const p = alarm.Properties;
      if (p['Namespace'] === METRIC_NAMESPACE) {
        const dims = p['Dimensions'] as { Name: string; Value: string }[];
        expectOwnMetric(id, String(p['MetricName']), dims.map((d) => d.Name));
        for (const d of dims) if (d.Name === 'service') expect(d.Value, id).toBe(SERVICE_DIMENSION.service);
        checked++;
      }
      for (const query of (p['Metrics'] as { Expression?: string }[] | undefined) ?? []) {
        if (!query.Expression) continue;
        const { namespace, dimensions } = schemaOf(query.Expression);
        expect(namespace, id).toBe(METRIC_NAMESPACE);
        expectOwnMetric(id, /SELECT \w+\((\w+)\)/.exec(query.Expression)![1]!, dimensions);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(2);
  });

  it('watches the dead-letter queue, the render queue\'s oldest request, the function\'s errors and throttles, and failures by code', () => {
    const find = (namespace: string, name: string) => alarms.filter(([, a]) => a.Properties['Namespace'] === namespace && a.Properties['MetricName'] === name).map(([, a]) => a.Properties);
    const dimensionOf = (p: Props) => (p['Dimensions'] as { Value: unknown }[])[0]!.Value;
    const [dlq] = find('AWS/SQS', 'ApproximateNumberOfMessagesVisible');
    expect(dimensionOf(dlq!)).toEqual({ 'Fn::GetAtt': ['RenderDeadLetterQueue', 'QueueName'] });
    expect(dlq).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    const [age] = find('AWS/SQS', 'ApproximateAgeOfOldestMessage');
    expect(dimensionOf(age!)).toEqual({ 'Fn::GetAtt': ['RenderQueue', 'QueueName'] });
    expect(age).toMatchObject({ Threshold: { Ref: 'QueueAgeAlarmSeconds' }, ComparisonOperator: 'GreaterThanThreshold' });
    for (const name of ['Errors', 'Throttles']) {
      const [alarm] = find('AWS/Lambda', name);
      expect(dimensionOf(alarm!), name).toEqual({ Ref: 'RenderPdfFunction' });
      expect(alarm, name).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    }
    const byCode = alarms.map(([, a]) => a.Properties).find((p) => (p['Metrics'] as { Expression?: string }[] | undefined)?.some((m) => m.Expression?.includes(METRIC.failures)));
    expect(byCode).toMatchObject({ Threshold: { Ref: 'FailureAlarmThreshold' }, ComparisonOperator: 'GreaterThanThreshold' });
    expect((byCode!['Metrics'] as { Expression: string }[])[0]!.Expression).toMatch(/GROUP BY code$/);
  });

  it('watches the page function\'s 5xx answers, never its 422s, and keeps its 422s out of the render function\'s Failures', () => {
    const page = alarms.filter(([, a]) => a.Properties['Namespace'] === METRIC_NAMESPACE && a.Properties['MetricName'] === METRIC.pageServerErrors);
    expect(page).toHaveLength(1);
    expect(page[0]![1].Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', Statistic: 'Sum' });
    expect(alarms.filter(([, a]) => JSON.stringify(a.Properties).includes(METRIC.pageDocumentErrors))).toEqual([]);
    // The page function counts nothing under Failures (the render function's alarm by code).
    const source = readFileSync(join(ROOT, 'lib/on-demand/handler.ts'), 'utf8');
    expect(source).not.toMatch(/countFailure|METRIC\.failures/);
  });

  it('notify the AlarmEmail topic, the AlarmTopicArn topic, both, or nobody', () => {
    const actions = (parameters: Record<string, string>) => {
      const ctx = localContext(template, parameters, {});
      return alarms.filter(([, a]) => !a.Condition || conditionHolds(a.Condition, template, ctx)).map(([, a]) => resolveIntrinsics(a.Properties['AlarmActions'], template, ctx));
    };
    const topicArn = 'arn:aws:sns:us-east-1:123456789012:ops-pager';
    for (const list of actions({})) expect(list).toEqual([]);
    for (const list of actions({ AlarmEmail: 'ops@example.com' })) expect(list).toEqual(['AlarmTopic']);
    for (const list of actions({ AlarmTopicArn: topicArn })) expect(list).toEqual([topicArn]);
    for (const list of actions({ AlarmEmail: 'ops@example.com', AlarmTopicArn: topicArn })) expect(list).toEqual(['AlarmTopic', topicArn]);
    const [[, topic]] = resources('AWS::SNS::Topic') as [[string, { Condition?: string; Properties: Props }]];
    expect(topic.Condition).toBe('HasAlarmEmail');
    expect(conditionHolds('HasAlarmEmail', template, localContext(template, {}, {}))).toBe(false);
    expect(conditionHolds('HasAlarmEmail', template, localContext(template, { AlarmEmail: 'ops@example.com' }, {}))).toBe(true);
  });
});

describe('the dashboard', () => {
  it('shows pages rendered, render time, failures by code, queue depth and age, concurrency and the dead-letter queue, with the code\'s own names', () => {
    const shown = new Set<string>();
    for (const widget of dashboardBody().widgets) {
      const { metrics, expressions } = widgetMetrics(widget.properties.metrics);
      for (const m of metrics) {
        const where = `widget "${widget.properties.title}"`;
        if (m.namespace === METRIC_NAMESPACE) {
          expectOwnMetric(where, m.name, Object.keys(m.dimensions));
          expect(m.dimensions['service'], where).toBe(SERVICE_DIMENSION.service);
        }
        shown.add(`${m.namespace} ${m.name} ${Object.values(m.dimensions).join(',')}`);
      }
      for (const expression of expressions) {
        const { namespace, dimensions } = schemaOf(expression);
        expect(namespace).toBe(METRIC_NAMESPACE);
        const name = /MetricName=\\?"(\w+)\\?"/.exec(expression)![1]!;
        expectOwnMetric(`widget "${widget.properties.title}"`, name, dimensions);
        shown.add(`${namespace} ${name} by ${[...dimensions].sort().join(',')}`);
      }
    }
    const own = (name: string) => `${METRIC_NAMESPACE} ${name} ${SERVICE_DIMENSION.service}`;
    for (const expected of [
      own(METRIC.pagesRendered),
      own(METRIC.renderMs),
      `${METRIC_NAMESPACE} ${METRIC.failures} by ${[...DIMENSIONS.Failures].sort().join(',')}`,
      'AWS/SQS ApproximateNumberOfMessagesVisible RenderQueue.QueueName',
      'AWS/SQS ApproximateAgeOfOldestMessage RenderQueue.QueueName',
      'AWS/Lambda ConcurrentExecutions RenderPdfFunction',
      'AWS/SQS ApproximateNumberOfMessagesVisible RenderDeadLetterQueue.QueueName',
    ]) {
      expect(shown, expected).toContain(expected);
    }
  });
});

describe('completion events in the template', () => {
  it('EmitEvents sets EVENT_BUS to the default bus, or to nothing', () => {
    const env = (parameters: Record<string, string>) => resolvedEnvironment(templateFunction(template, 'RenderPdfFunction'), template, localContext(template, parameters, {}));
    expect(env({})['EVENT_BUS']).toBe('default');
    expect(env({ EmitEvents: 'false' })['EVENT_BUS']).toBe('');
    expect(resolvedEnvironment(templateFunction(template, 'ReprocessFunction'), template, localContext(template, {}, {}))['EVENT_BUS']).toBeUndefined();
  });
});
