/**
 * HTTP requests as a Lambda Function URL hands them to its function (payload format 2.0), for
 * `npm run serve`, the page function's tests and its bench: one translation, so all three
 * send what AWS sends.
 */
import type { LambdaFunctionURLEvent } from 'aws-lambda';

/** `pathAndQuery` as the client sent it: "/incoming%2Fa.pdf?page=2". */
export function functionUrlEvent(method: string, pathAndQuery: string, headers: Record<string, string> = {}, sourceIp = '127.0.0.1'): LambdaFunctionURLEvent {
  const at = pathAndQuery.indexOf('?');
  const rawPath = at < 0 ? pathAndQuery : pathAndQuery.slice(0, at);
  const rawQueryString = at < 0 ? '' : pathAndQuery.slice(at + 1);
  const queryStringParameters: Record<string, string> = {};
  // Function URLs join repeated parameters with commas in this map; rawQueryString keeps them apart.
  for (const [name, value] of new URLSearchParams(rawQueryString)) queryStringParameters[name] = name in queryStringParameters ? `${queryStringParameters[name]},${value}` : value;
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
    ...(rawQueryString ? { queryStringParameters } : {}),
    requestContext: {
      accountId: 'anonymous',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'local',
      http: { method: method.toUpperCase(), path: rawPath, protocol: 'HTTP/1.1', sourceIp, userAgent: headers['user-agent'] ?? 'local' },
      requestId: `local-${now.getTime()}`,
      routeKey: '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
}
