/**
 * Completion events on EventBridge: one PutEvents entry per event, on the configured bus.
 * The endpoint follows the SDK's own convention (AWS_ENDPOINT_URL_EVENTBRIDGE, then
 * AWS_ENDPOINT_URL: @smithy/core's getEndpointUrlConfig reads both), or S3_ENDPOINT for local
 * use, as the SQS client does (moto serves EventBridge on the same port).
 */
import { EventBridgeClient, PutEventsCommand, type EventBridgeClientConfig } from '@aws-sdk/client-eventbridge';
import type { Config } from '../config/env.js';
import { EVENT_SOURCE, type CompletionEvents } from './completion.js';

/**
 * One client per container. It does not retry by itself (completionAnnouncer does, and counts
 * each failure), and it gives up on a request after 2 s: the event is sent after the commit,
 * in the time kept back to finish, and must not hold the invocation long.
 */
export function createEventBridgeClient(config: Pick<Config, 's3Endpoint'>, overrides: EventBridgeClientConfig = {}): EventBridgeClient {
  // The SDK's own variables win over the S3_ENDPOINT alias (the client then leaves the endpoint to the SDK).
  const viaEnv = process.env['AWS_ENDPOINT_URL_EVENTBRIDGE'] || process.env['AWS_ENDPOINT_URL'];
  const local: EventBridgeClientConfig =
    config.s3Endpoint || viaEnv
      ? {
          ...(viaEnv ? {} : { endpoint: config.s3Endpoint }),
          region: process.env['AWS_REGION'] ?? 'us-east-1',
          ...(process.env['AWS_ACCESS_KEY_ID'] ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
        }
      : {};
  return new EventBridgeClient({ maxAttempts: 1, requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 }, ...local, ...overrides });
}

export function eventBridgeEvents(client: Pick<EventBridgeClient, 'send'>, eventBus: string): CompletionEvents {
  return {
    async put(event) {
      const result = await client.send(
        new PutEventsCommand({
          Entries: [{ EventBusName: eventBus, Source: EVENT_SOURCE, DetailType: event.detailType, Time: event.time, Detail: JSON.stringify(event.detail) }],
        }),
      );
      // PutEvents answers 200 with per-entry failures (throttling, internal errors): not taken.
      if (result.FailedEntryCount) {
        const entry = result.Entries?.[0];
        throw new Error(`EventBridge refused the event on bus ${eventBus}: ${entry?.ErrorCode ?? 'unknown'}: ${entry?.ErrorMessage ?? ''}`);
      }
    },
  };
}
