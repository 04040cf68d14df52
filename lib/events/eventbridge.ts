/**
 * Completion events on EventBridge: one PutEvents entry per event, on the configured bus.
 * A local endpoint (AWS_ENDPOINT_URL_EVENTBRIDGE, AWS_ENDPOINT_URL or S3_ENDPOINT) comes from
 * lib/aws/endpoint.ts, as for the S3 and SQS clients (moto serves EventBridge on the same port).
 */
import { EventBridgeClient, PutEventsCommand, type EventBridgeClientConfig } from '@aws-sdk/client-eventbridge';
import { localClientConfig } from '../aws/endpoint.js';
import type { Config } from '../config/env.js';
import { EVENT_SOURCE, EventRefusedError, type CompletionEvents } from './completion.js';

/**
 * One client per container. It does not retry by itself (completionAnnouncer does, and counts
 * each failure), and it gives up on a request after 2 s: the event is sent after the commit,
 * in the time kept back to finish, and must not hold the invocation long.
 */
export function createEventBridgeClient(config: Pick<Config, 'endpoints'>, overrides: EventBridgeClientConfig = {}): EventBridgeClient {
  // throwOnRequestTimeout: newer Smithy handlers only warn when requestTimeout passes, and the announcement's bound needs the error.
  return new EventBridgeClient({
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000, throwOnRequestTimeout: true },
    ...localClientConfig('EventBridge', config.endpoints),
    ...overrides,
  });
}

/** Throttling answers 400 too (ThrottlingException): it passes, so it is retried like a 5xx. */
const THROTTLING = /Throttl|TooManyRequests|RequestLimitExceeded/;
/** A signature refused for the clock (skew, an expired request) passes too: the next attempt signs anew. */
const CLOCK = /RequestTimeTooSkewed|RequestExpired|InvalidSignatureException|SignatureDoesNotMatch/;

/**
 * A PutEvents error the bus will answer again however often it is retried: a 4xx other than
 * throttling or a clock problem (AccessDeniedException, ResourceNotFoundException for a missing
 * bus, ValidationException). Timeouts and aborts carry no HTTP status, so they stay transient.
 */
export function isPermanentPutError(err: unknown): err is Error & { name: string } {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: { throttling?: boolean } } | null;
  const status = e?.$metadata?.httpStatusCode;
  if (status === undefined || status < 400 || status >= 500 || status === 429) return false;
  const name = e?.name ?? '';
  return !e?.$retryable?.throttling && !THROTTLING.test(name) && !CLOCK.test(name);
}

export function eventBridgeEvents(client: Pick<EventBridgeClient, 'send'>, eventBus: string): CompletionEvents {
  return {
    async put(event, signal) {
      let result;
      try {
        result = await client.send(
          new PutEventsCommand({
            Entries: [{ EventBusName: eventBus, Source: EVENT_SOURCE, DetailType: event.detailType, Time: event.time, Detail: JSON.stringify(event.detail) }],
          }),
          signal ? { abortSignal: signal } : {},
        );
      } catch (err) {
        if (isPermanentPutError(err)) throw new EventRefusedError(`EventBridge refused the event on bus ${eventBus}: ${err.name}: ${err.message}`, err.name);
        throw err;
      }
      // PutEvents answers 200 with per-entry failures (throttling, internal errors): not taken.
      if (result.FailedEntryCount) {
        const entry = result.Entries?.[0];
        throw new Error(`EventBridge refused the event on bus ${eventBus}: ${entry?.ErrorCode ?? 'unknown'}: ${entry?.ErrorMessage ?? ''}`);
      }
    },
  };
}
