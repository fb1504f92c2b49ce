################################################################################
# Inputs of the Terraform port (kahlstrm/ecr-soci-indexer/aws): same names, same meaning
################################################################################

variable "deployment_assets_bucket" {
  description = "S3 bucket holding the Lambda zips (the `deployment_assets_bucket` printed by `cargo xtask publish`)."
  type        = string

  validation {
    condition     = length(trimspace(var.deployment_assets_bucket)) > 0
    error_message = "deployment_assets_bucket must be a non-empty S3 bucket name."
  }
}

variable "ecr_image_filter_lambda_asset_path" {
  description = "S3 key of the ECR image filter Lambda zip in `deployment_assets_bucket`."
  type        = string

  validation {
    condition     = length(trimspace(var.ecr_image_filter_lambda_asset_path)) > 0
    error_message = "ecr_image_filter_lambda_asset_path must be a non-empty S3 key."
  }
}

variable "soci_index_generator_lambda_asset_path" {
  description = "S3 key of the SOCI index generator Lambda zip in `deployment_assets_bucket`."
  type        = string

  validation {
    condition     = length(trimspace(var.soci_index_generator_lambda_asset_path)) > 0
    error_message = "soci_index_generator_lambda_asset_path must be a non-empty S3 key."
  }
}

variable "ecr_image_filter_lambda_handler" {
  description = "Handler of the ECR image filter Lambda. Rust `bootstrap` binaries ignore it; kept as an optional override for compatibility with the Terraform port."
  type        = string
  default     = "bootstrap"
  nullable    = false
}

variable "ecr_image_filter_lambda_runtime" {
  description = "Runtime of the ECR image filter Lambda."
  type        = string
  default     = "provided.al2023"
  nullable    = false
}

variable "soci_index_generator_lambda_handler" {
  description = "Handler of the SOCI index generator Lambda (the Terraform port wrongly used the filter's handler for it)."
  type        = string
  default     = "bootstrap"
  nullable    = false
}

variable "soci_index_generator_lambda_runtime" {
  description = "Runtime of the SOCI index generator Lambda."
  type        = string
  default     = "provided.al2023"
  nullable    = false
}

variable "region" {
  description = "Region used in the ARNs and the event pattern. Null (the default) means the AWS provider's region. It must be the region the provider deploys to."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as us-east-1, or null to use the provider's region."
  }
}

variable "account_id" {
  description = "Account ID used in the ARNs and the event pattern. Null (the default) means the account of the provider's credentials."
  type        = string
  default     = null

  validation {
    condition     = var.account_id == null || can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be a 12-digit AWS account ID, or null to use the provider's account."
  }
}

variable "soci_repository_image_tag_filters" {
  description = "Which pushes get a SOCI index: a list of `<repository-glob>:<tag-glob>` shell globs (`*` and `?` wildcards; `*` also crosses `/`), each matched against `<repository>:<tag>`. The repository parts also scope the generator's ECR permissions (`*` = every repository)."
  type        = list(string)
  default     = ["*:*"]
  nullable    = false

  validation {
    condition     = length(var.soci_repository_image_tag_filters) > 0
    error_message = "soci_repository_image_tag_filters must hold at least one filter (use [\"*:*\"] to index every push)."
  }

  validation {
    condition = alltrue([
      for f in var.soci_repository_image_tag_filters :
      can(regex("^[a-z0-9._/*?-]+:[A-Za-z0-9_.*?\\[\\]!-]+$", trimspace(f)))
    ])
    error_message = "Each filter must be `<repository-glob>:<tag-glob>` with exactly one `:`, e.g. `*:*`, `my-repo:*` or `team/*:v*`. The repository glob may use a-z 0-9 . _ - / and the wildcards * ?; the tag glob may use A-Z a-z 0-9 _ . - and the wildcards * ? [ ] !. No commas or spaces inside a filter."
  }
}

variable "resource_prefix" {
  description = "Prefix of every resource name: functions are `<prefix>-ECRImageActionEventFilter` and `<prefix>-SociIndexGenerator`. Empty (`\"\"`): no prefix and no leading `-`, as in the Terraform port."
  type        = string
  default     = "ecr-soci-indexer"
  nullable    = false

  validation {
    # The longest names are `<prefix>-ECRImageEventFilterLambdaRole` and
    # `<prefix>-ECRImageActionEventBridgeRule` (+30 characters); IAM and EventBridge allow 64.
    condition     = can(regex("^[A-Za-z0-9_-]{0,34}$", var.resource_prefix))
    error_message = "resource_prefix must be 0-34 characters of A-Z a-z 0-9 _ - (role and rule names are limited to 64 characters); \"\" means no prefix."
  }
}

################################################################################
# What the generator builds
################################################################################

variable "soci_index_version" {
  description = "SOCI index manifest version: `V2` (default; index attached to the image through an OCI image index tagged `<tag><index_tag_suffix>`) or `V1` (legacy, index pushed untagged with a `subject`)."
  type        = string
  default     = "V2"
  nullable    = false

  validation {
    condition     = contains(["V1", "V2"], var.soci_index_version)
    error_message = "soci_index_version must be \"V1\" or \"V2\"."
  }
}

variable "span_size" {
  description = "zTOC span size in bytes (the distance between decompression checkpoints)."
  type        = number
  default     = 4194304
  nullable    = false

  validation {
    condition     = var.span_size >= 65536 && floor(var.span_size) == var.span_size
    error_message = "span_size must be a whole number of bytes, at least 65536 (default 4194304 = 4 MiB)."
  }
}

variable "min_layer_size" {
  description = "Layers smaller than this many bytes get no zTOC."
  type        = number
  default     = 10485760
  nullable    = false

  validation {
    condition     = var.min_layer_size >= 0 && floor(var.min_layer_size) == var.min_layer_size
    error_message = "min_layer_size must be a whole, non-negative number of bytes (default 10485760 = 10 MiB)."
  }
}

variable "index_tag_suffix" {
  description = "Suffix of the tag the generator gives its output (`<tag><suffix>`); the filter skips pushes whose tag ends with it, so the index push does not trigger another run."
  type        = string
  default     = "-soci"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,32}$", var.index_tag_suffix))
    error_message = "index_tag_suffix must be 1-32 characters of A-Z a-z 0-9 _ . - (it is appended to an image tag)."
  }
}

variable "platforms" {
  description = "Platforms the generator indexes in a multi-platform image, e.g. `[\"linux/amd64\", \"linux/arm64\"]` (env `platforms`). Empty (default): every platform."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for p in var.platforms : can(regex("^[a-z0-9_.-]+/[a-z0-9_.-]+(/[a-z0-9_.-]+)?$", p))])
    error_message = "Each platform must be `<os>/<architecture>[/<variant>]`, e.g. linux/amd64 or linux/arm64/v8."
  }
}

variable "build_tool_identifier" {
  description = "Build tool written into every zTOC and index (env `build_tool_identifier`). Null: `soci-lambda v<version>`."
  type        = string
  default     = null
}

variable "ecr_endpoint" {
  description = "Overrides the ECR API endpoint the generator calls (env `ECR_ENDPOINT`), e.g. a VPC interface endpoint URL. Null leaves it unset."
  type        = string
  default     = null
}

variable "rust_log" {
  description = "Value of `RUST_LOG` for both functions (e.g. `info`, `debug`). Null leaves it unset."
  type        = string
  default     = null
}

variable "disable_xattrs" {
  description = "soci's xattr optimisation (env `disable_xattrs`): the zTOC descriptor of each layer without `SCHILY.xattr.*` records and opaque whiteouts (`.wh..wh..opq`) gets `com.amazon.soci.disable-xattrs: \"true\"`, so the snapshotter skips extended attribute lookups in that layer. The zTOCs are the same either way. Off by default, as in soci."
  type        = bool
  default     = false
  nullable    = false
}

variable "memory_budget_mib" {
  description = "Memory budget of one zTOC build in MiB (env `memory_budget_mib`, at least 64): a zTOC may use a quarter of it for its TOC and an eighth for checkpoints; a layer over that is left out as unindexable, naming the limit. Null: the function's memory size, as the generator reads it from Lambda."
  type        = number
  default     = null
  validation {
    condition     = var.memory_budget_mib == null || (floor(coalesce(var.memory_budget_mib, 0)) == coalesce(var.memory_budget_mib, 0) && coalesce(var.memory_budget_mib, 0) >= 64)
    error_message = "memory_budget_mib must be a whole number of MiB, at least 64 (or null)."
  }
}

variable "parallel_fetch_min_size" {
  description = "Layers at least this large (bytes) are downloaded as concurrent `Range` requests (env `parallel_fetch_min_size`); smaller ones as one stream. Null: the generator's default, 33554432 (32 MiB)."
  type        = number
  default     = null
  validation {
    condition     = var.parallel_fetch_min_size == null || (floor(coalesce(var.parallel_fetch_min_size, 0)) == coalesce(var.parallel_fetch_min_size, 0) && coalesce(var.parallel_fetch_min_size, 0) >= 0)
    error_message = "parallel_fetch_min_size must be a whole number of bytes, 0 or more (or null)."
  }
}

variable "parallel_fetch_chunk_size" {
  description = "Bytes per `Range` request of a parallel download (env `parallel_fetch_chunk_size`), 65536 (64 KiB) to 268435456 (256 MiB). Null: the generator's default, 4194304 (4 MiB)."
  type        = number
  default     = null
  validation {
    condition     = var.parallel_fetch_chunk_size == null || (floor(coalesce(var.parallel_fetch_chunk_size, 0)) == coalesce(var.parallel_fetch_chunk_size, 0) && coalesce(var.parallel_fetch_chunk_size, 0) >= 65536 && coalesce(var.parallel_fetch_chunk_size, 0) <= 268435456)
    error_message = "parallel_fetch_chunk_size must be a whole number of bytes from 65536 to 268435456 (or null)."
  }
}

variable "parallel_fetch_concurrency" {
  description = "`Range` requests in flight or buffered per layer (env `parallel_fetch_concurrency`), 1 to 64; 1 downloads every layer as one stream. Each holds up to a chunk in memory. Null: the generator's default, the function's memory / 32 MiB - 2, from 1 to 12."
  type        = number
  default     = null
  validation {
    condition     = var.parallel_fetch_concurrency == null || (floor(coalesce(var.parallel_fetch_concurrency, 0)) == coalesce(var.parallel_fetch_concurrency, 0) && coalesce(var.parallel_fetch_concurrency, 0) >= 1 && coalesce(var.parallel_fetch_concurrency, 0) <= 64)
    error_message = "parallel_fetch_concurrency must be a whole number from 1 to 64 (or null)."
  }
}

################################################################################
# Metrics (CloudWatch embedded metric format) and their dashboard
################################################################################

variable "emit_metrics" {
  description = "The generator writes CloudWatch embedded metric format records to its log (env `emit_metrics`): images indexed and failed, layers indexed and left out by reason, bytes, seconds and throughput per layer. CloudWatch Logs turns them into custom metrics in `metrics_namespace` (billed as custom metrics, about a dozen). False: no records."
  type        = bool
  default     = true
  nullable    = false
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of those metrics (env `metrics_namespace`). Null: `SOCI/IndexGenerator`."
  type        = string
  default     = null

  validation {
    condition     = var.metrics_namespace == null || (can(regex("^[A-Za-z0-9._/#: -]{1,255}$", var.metrics_namespace)) && !startswith(coalesce(var.metrics_namespace, "x"), "AWS/") && !startswith(coalesce(var.metrics_namespace, "x"), ":") && trimspace(coalesce(var.metrics_namespace, "x")) != "")
    error_message = "metrics_namespace must be 1-255 characters of A-Z a-z 0-9 . _ / # : - and space, not only spaces, not starting with \":\" or the reserved \"AWS/\"."
  }
}

variable "create_metrics_dashboard" {
  description = "Create a CloudWatch dashboard (named like the generator) with the generator's metrics. Needs `emit_metrics`."
  type        = bool
  default     = false
  nullable    = false
}

################################################################################
# Lambda sizing and deployment
################################################################################

variable "architecture" {
  description = "Instruction set of both functions: `x86_64` or `arm64`. The zips must be built for it."
  type        = string
  default     = "x86_64"
  nullable    = false

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be \"x86_64\" or \"arm64\"."
  }
}

variable "ecr_image_filter_lambda_source_code_hash" {
  description = "Base64 SHA-256 of the filter zip (`ecr_image_filter_lambda_source_code_hash` from `cargo xtask publish`). When it changes, the function code is redeployed. Null: code changes under the same S3 key are not noticed."
  type        = string
  default     = null
}

variable "soci_index_generator_lambda_source_code_hash" {
  description = "Base64 SHA-256 of the generator zip (`soci_index_generator_lambda_source_code_hash` from `cargo xtask publish`). When it changes, the function code is redeployed."
  type        = string
  default     = null
}

variable "ecr_image_filter_lambda_memory_size" {
  description = "Memory of the filter Lambda in MB."
  type        = number
  default     = 128
  nullable    = false

  validation {
    condition     = var.ecr_image_filter_lambda_memory_size >= 128 && var.ecr_image_filter_lambda_memory_size <= 10240
    error_message = "ecr_image_filter_lambda_memory_size must be between 128 and 10240 MB."
  }
}

variable "ecr_image_filter_lambda_timeout" {
  description = "Timeout of the filter Lambda in seconds (it validates an event and makes one asynchronous invoke)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.ecr_image_filter_lambda_timeout >= 1 && var.ecr_image_filter_lambda_timeout <= 900
    error_message = "ecr_image_filter_lambda_timeout must be between 1 and 900 seconds."
  }
}

variable "soci_index_generator_lambda_memory_size" {
  description = "Memory of the generator Lambda in MB. CPU share grows with memory; 1024 MB streams a layer at roughly decompression speed."
  type        = number
  default     = 1024
  nullable    = false

  validation {
    condition     = var.soci_index_generator_lambda_memory_size >= 128 && var.soci_index_generator_lambda_memory_size <= 10240
    error_message = "soci_index_generator_lambda_memory_size must be between 128 and 10240 MB."
  }
}

variable "soci_index_generator_lambda_timeout" {
  description = "Timeout of the generator Lambda in seconds (900 is Lambda's maximum)."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.soci_index_generator_lambda_timeout >= 1 && var.soci_index_generator_lambda_timeout <= 900
    error_message = "soci_index_generator_lambda_timeout must be between 1 and 900 seconds."
  }
}

variable "soci_index_generator_lambda_ephemeral_storage_size" {
  description = "Ephemeral storage (/tmp) of the generator Lambda in MB. The generator streams layers and never writes them to disk, so the 512 MB minimum is enough."
  type        = number
  default     = 512
  nullable    = false

  validation {
    condition     = var.soci_index_generator_lambda_ephemeral_storage_size >= 512 && var.soci_index_generator_lambda_ephemeral_storage_size <= 10240
    error_message = "soci_index_generator_lambda_ephemeral_storage_size must be between 512 and 10240 MB."
  }
}

variable "ecr_image_filter_lambda_reserved_concurrent_executions" {
  description = "Reserved concurrency of the filter Lambda; -1 (default) means unreserved, 0 disables it."
  type        = number
  default     = -1
  nullable    = false

  validation {
    condition     = var.ecr_image_filter_lambda_reserved_concurrent_executions >= -1
    error_message = "ecr_image_filter_lambda_reserved_concurrent_executions must be -1 (unreserved) or a non-negative number."
  }
}

variable "soci_index_generator_lambda_reserved_concurrent_executions" {
  description = "Reserved concurrency of the generator Lambda; -1 (default) means unreserved. A small value caps parallel pulls from ECR during large pushes."
  type        = number
  default     = -1
  nullable    = false

  validation {
    condition     = var.soci_index_generator_lambda_reserved_concurrent_executions >= -1
    error_message = "soci_index_generator_lambda_reserved_concurrent_executions must be -1 (unreserved) or a non-negative number."
  }
}

variable "soci_index_generator_on_failure_destination_arn" {
  description = "ARN of an SQS queue or SNS topic that receives generator invocations that failed after all asynchronous retries. Null: failures only show in the logs."
  type        = string
  default     = null

  validation {
    condition     = var.soci_index_generator_on_failure_destination_arn == null || can(regex("^arn:[a-z-]+:(sqs|sns):[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", var.soci_index_generator_on_failure_destination_arn))
    error_message = "soci_index_generator_on_failure_destination_arn must be the ARN of an SQS queue or an SNS topic (arn:<partition>:sqs:... or arn:<partition>:sns:...)."
  }
}

variable "soci_index_generator_on_failure_destination_kms_key_arn" {
  description = "KMS key that encrypts the on-failure queue or topic, when it is not `kms_key_arn`. The generator's role gets `kms:GenerateDataKey*` and `kms:Decrypt` on it (Lambda sends failure records with that role). Null: `kms_key_arn`, if set."
  type        = string
  default     = null

  validation {
    condition     = var.soci_index_generator_on_failure_destination_kms_key_arn == null || can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.soci_index_generator_on_failure_destination_kms_key_arn))
    error_message = "soci_index_generator_on_failure_destination_kms_key_arn must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>)."
  }
}

variable "soci_index_generator_maximum_retry_attempts" {
  description = "Retries of a failed asynchronous generator invocation (0-2), with or without an on-failure destination."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = contains([0, 1, 2], var.soci_index_generator_maximum_retry_attempts)
    error_message = "soci_index_generator_maximum_retry_attempts must be 0, 1 or 2."
  }
}

################################################################################
# Security, networking, logging
################################################################################

variable "log_retention_in_days" {
  description = "Retention of both CloudWatch log groups, in days."
  type        = number
  default     = 14
  nullable    = false

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of the values CloudWatch Logs accepts: 0 (never expire), 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN that encrypts both log groups and both functions' environment variables. Its key policy must allow the CloudWatch Logs service principal of the region. Null: AWS-owned keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>)."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of an IAM policy set as permissions boundary of both roles."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:[a-z-]+:iam::([0-9]{12}|aws):policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN (arn:<partition>:iam::<account>:policy/<name>)."
  }
}

variable "subnet_ids" {
  description = "Subnets to run both functions in. Empty (default): no VPC. The subnets need a route to ECR, S3 (layers) and Lambda (the filter invokes the generator), through NAT or VPC endpoints."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "security_group_ids" {
  description = "Security groups of both functions when `subnet_ids` is set."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "tags" {
  description = "Tags for every resource that takes tags (roles, functions, log groups, rule)."
  type        = map(string)
  default     = {}
  nullable    = false
}

################################################################################
# Alarms (off by default)
################################################################################

variable "create_alarms" {
  description = "Create CloudWatch alarms on the generator's `Errors`, `Throttles` and `DestinationDeliveryFailures` (any in a period)."
  type        = bool
  default     = false
  nullable    = false
}

variable "create_failure_queue_alarms" {
  description = "With `create_alarms`: also alarm on the on-failure queue's depth (any message) and age. The destination must be an SQS queue. A plain boolean, so it is known while the queue is still to be created."
  type        = bool
  default     = false
  nullable    = false
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic notified when an alarm fires and when it clears. Null: the alarms only show in CloudWatch."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN."
  }
}

variable "alarm_period_seconds" {
  description = "Period over which each alarm's metric is evaluated, in seconds."
  type        = number
  default     = 300
  nullable    = false

  validation {
    condition     = var.alarm_period_seconds >= 60 && var.alarm_period_seconds % 60 == 0
    error_message = "alarm_period_seconds must be a multiple of 60, at least 60."
  }
}

variable "failure_queue_age_alarm_threshold_seconds" {
  description = "Age of the oldest message in the on-failure queue that raises the age alarm, in seconds."
  type        = number
  default     = 86400
  nullable    = false

  validation {
    condition     = var.failure_queue_age_alarm_threshold_seconds >= 60
    error_message = "failure_queue_age_alarm_threshold_seconds must be at least 60."
  }
}

################################################################################
# Image sources and index tag cleanup (off by default)
################################################################################

variable "index_pull_through_cache_images" {
  description = "Also index images a pull through cache rule brings into ECR (`ECR Pull Through Cache Action` events with `sync-status` SUCCESS). The cache repositories (`<prefix>/<upstream repository>`) must match `soci_repository_image_tag_filters` like any other."
  type        = bool
  default     = false
  nullable    = false
}

variable "index_replicated_images" {
  description = "Also index images replicated into this region or account (`ECR Replication Action` events with `result` SUCCESS, sent in the destination). Leave off where the source region already indexes: its `<tag><suffix>` is replicated too."
  type        = bool
  default     = false
  nullable    = false
}

variable "index_in_place" {
  description = "V2: after indexing, move `<tag>` itself to the SOCI-enabled index (so deployments that keep referencing `<tag>` lazy-load) and keep the original as `<tag>-original` (env `index_in_place`). For mutable repositories only: where the registry refuses to move the tag (immutable tags), the generator says so and `<tag><suffix>` stays the tag to deploy. Consumers that reject image indexes (Lambda container images) or read the tag's digest see the index. Ignored with V1."
  type        = bool
  default     = false
  nullable    = false
}

variable "index_tag_cleanup" {
  description = "V2: when a tag is deleted (`ECR Image Action` DELETE), delete its `<tag><suffix>` if, and only if, it still points at a conversion of the deleted image. Adds `ecr:BatchDeleteImage` to the generator's role."
  type        = bool
  default     = false
  nullable    = false
}

variable "ztoc_cache" {
  description = "Cache every zTOC the generator builds in an ECR repository the module creates (`ztoc_cache_repository_name`), keyed by layer digest, span size, compression and build tool, so a layer shared by many images (a base layer) is downloaded and indexed once per account and region; entries are verified before reuse, and any cache failure falls back to a normal build. Off by default so that upgrading (or switching from the Terraform port) creates no new repository and grants no new permission unasked."
  type        = bool
  default     = false
  nullable    = false
}

variable "ztoc_cache_repository_name" {
  description = "Name of the zTOC cache repository (with `ztoc_cache`); null: `<resource_prefix>-soci-ztoc-cache` in lowercase. Must not be one of the repositories indexed: its pushes are never indexed (left out of the EventBridge rule and skipped by the filter)."
  type        = string
  default     = null
}

variable "ztoc_cache_expiration_days" {
  description = "Days after which a zTOC cache entry expires (ECR lifecycle policy); the next image that needs it builds and writes it again."
  type        = number
  default     = 30
  nullable    = false
  validation {
    condition     = var.ztoc_cache_expiration_days >= 1 && floor(var.ztoc_cache_expiration_days) == var.ztoc_cache_expiration_days
    error_message = "ztoc_cache_expiration_days must be a whole number of days, at least 1."
  }
}
