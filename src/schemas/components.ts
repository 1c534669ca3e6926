import type { TSchema } from 'typebox'
import { ExportEnd } from './export.js'
import { ExportJob, ExportJobList, ExportRequest } from './export-jobs.js'
import { Follower, FollowersPage } from './followers.js'
import { FollowingPage } from './following.js'
import { HealthStatus } from './operations.js'
import { Problem } from './problem.js'
import { UserProfile } from './profile.js'
import { QuotaReport, Usage } from './quota.js'

/**
 * The named schemas: each has an `$id`, is registered once with `app.addSchema`, is referred to with
 * `ref()`, and appears under the OpenAPI document's `components.schemas`. A new one is listed here.
 */
export const COMPONENTS: ReadonlyArray<TSchema & { $id: string }> = [
  Problem,
  Follower,
  FollowersPage,
  FollowingPage,
  UserProfile,
  ExportEnd,
  Usage,
  QuotaReport,
  HealthStatus,
  ExportRequest,
  ExportJob,
  ExportJobList
]
