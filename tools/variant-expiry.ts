/**
 * The page variants' expiry on a bucket the stack does not create (SourceBucketMode=existing,
 * or an OutputBucketName): the rule the created bucket has (template.yaml, ExpirePageVariants:
 * objects under OutputPrefix tagged s3-pdf-render-variant=true expire after
 * PageCacheExpirationDays), merged into the bucket's own lifecycle configuration. Merged, not
 * put: PutBucketLifecycleConfiguration replaces the whole configuration, so a bare put would
 * delete every rule the bucket had. Read, replace our rule by its ID, put back, with the
 * configuration's TransitionDefaultMinimumObjectSize as read: a put without it sets S3's default
 * (all_storage_classes_128K), so a bucket set to varies_by_storage_class would silently change
 * which small objects its own transition rules move.
 * docs/deploy.md gives the same steps with the AWS CLI; `npm run local -- --existing-bucket`
 * applies it on moto.
 */
import {
  GetBucketLifecycleConfigurationCommand,
  PutBucketLifecycleConfigurationCommand,
  type LifecycleRule,
  type S3Client,
  type TransitionDefaultMinimumObjectSize,
} from '@aws-sdk/client-s3';
import { VARIANT_TAG } from '../lib/on-demand/render-variant.js';
import { s3ErrorCode } from '../lib/s3/errors.js';

/** The rule's ID: the created bucket's rule has the same. */
export const VARIANT_EXPIRY_RULE_ID = 'ExpirePageVariants';

export function variantExpiryRule(outputPrefix: string, days: number): LifecycleRule {
  return {
    ID: VARIANT_EXPIRY_RULE_ID,
    Status: 'Enabled',
    Filter: { And: { Prefix: outputPrefix, Tags: [{ Key: VARIANT_TAG.key, Value: VARIANT_TAG.value }] } },
    Expiration: { Days: days },
  };
}

/** Adds (or updates) the variant expiry rule of `bucket`, keeping every other rule it has. */
export async function addVariantExpiry(s3: S3Client, bucket: string, outputPrefix: string, days: number): Promise<LifecycleRule[]> {
  let rules: LifecycleRule[] = [];
  let minimumSize: TransitionDefaultMinimumObjectSize | undefined;
  try {
    const now = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }));
    rules = now.Rules ?? [];
    minimumSize = now.TransitionDefaultMinimumObjectSize;
  } catch (err) {
    // A bucket without a lifecycle configuration; any other error must not end in a put that drops rules.
    if (s3ErrorCode(err) !== 'NoSuchLifecycleConfiguration') throw err;
  }
  const merged = [...rules.filter((r) => r.ID !== VARIANT_EXPIRY_RULE_ID), variantExpiryRule(outputPrefix, days)];
  await s3.send(
    new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: merged }, ...(minimumSize ? { TransitionDefaultMinimumObjectSize: minimumSize } : {}) }),
  );
  return merged;
}
