################################################################################
# Where we are: region, account and partition come from the inputs or from the provider
################################################################################

data "aws_partition" "current" {}

# Always read: `region` and `account_id` inputs are checked against them (a mismatch would give
# wrong ARNs and a rule that never matches).
data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  # `id` is the region name under provider 5.x and 6.x alike; `name` is deprecated in 6.x.
  provider_region  = data.aws_region.current.id
  provider_account = data.aws_caller_identity.current.account_id
  region           = coalesce(var.region, local.provider_region)
  account_id       = coalesce(var.account_id, local.provider_account)

  # As in the Terraform port: an empty prefix means no prefix (and no leading separator).
  name_prefix    = var.resource_prefix == "" ? "" : "${var.resource_prefix}-"
  filter_name    = "${local.name_prefix}ECRImageActionEventFilter"
  generator_name = "${local.name_prefix}SociIndexGenerator"
  # The port's names for the roles and the rule, so switching from it renames nothing.
  filter_role_name    = "${local.name_prefix}ECRImageEventFilterLambdaRole"
  generator_role_name = "${local.name_prefix}SociIndexGeneratorLambdaRole"
  rule_name           = "${local.name_prefix}ECRImageActionEventBridgeRule"

  # Known at plan time (the filter's environment and the IAM policies need them before the
  # functions exist).
  generator_arn = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.generator_name}"

  filter_log_group_name    = "/aws/lambda/${local.filter_name}"
  generator_log_group_name = "/aws/lambda/${local.generator_name}"
  filter_log_group_arn     = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.filter_log_group_name}"
  generator_log_group_arn  = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.generator_log_group_name}"

  # `<repository-glob>:<tag-glob>` -> the repository glob. Glob `*`/`?` mean the same as IAM's
  # resource wildcards (and both cross `/`), so the glob goes into the ARN as it is; a bare `*`
  # yields `repository/*`, i.e. every repository. When one filter covers everything, the others
  # add nothing.
  filters              = [for f in var.soci_repository_image_tag_filters : trimspace(f)]
  repository_globs     = distinct([for f in local.filters : split(":", f)[0]])
  repository_arn_globs = contains(local.repository_globs, "*") ? ["*"] : local.repository_globs
  ecr_repository_arns = [
    for glob in local.repository_arn_globs :
    "arn:${local.partition}:ecr:${local.region}:${local.account_id}:repository/${glob}"
  ]

  # ECR delivers image actions to the default bus of the image's region and account. Pinning both
  # (the Terraform port pinned the region) keeps events forwarded from other accounts or regions
  # from reaching a generator that has no permission on their repositories.
  #
  # One sub-pattern per kind of event handled, as the Amazon ECR user guide ("Amazon ECR events
  # and EventBridge") shows them: a push or delete has `action-type` and `result`, a pull through
  # cache sync only `sync-status`, a replication `action-type` REPLICATE and `result`. With more
  # than one kind they go under `$or`; with pushes only the pattern is the one it always was.
  # (JSON strings: the sub-patterns are objects of different types, which HCL lists refuse.)
  image_action_types = var.index_tag_cleanup ? ["PUSH", "DELETE"] : ["PUSH"]
  event_sub_patterns = concat(
    [jsonencode({ "detail-type" = ["ECR Image Action"], detail = merge({ "action-type" = local.image_action_types, result = ["SUCCESS"] }, local.ztoc_cache_event_detail) })],
    var.index_pull_through_cache_images ? [jsonencode({ "detail-type" = ["ECR Pull Through Cache Action"], detail = { "sync-status" = ["SUCCESS"] } })] : [],
    var.index_replicated_images ? [jsonencode({ "detail-type" = ["ECR Replication Action"], detail = merge({ "action-type" = ["REPLICATE"], result = ["SUCCESS"] }, local.ztoc_cache_event_detail) })] : [],
  )
  event_pattern_base = {
    source  = ["aws.ecr"]
    account = [local.account_id]
    region  = [local.region]
  }
  event_pattern_json = length(local.event_sub_patterns) == 1 ? jsonencode(merge(local.event_pattern_base, jsondecode(local.event_sub_patterns[0]))) : jsonencode(merge(local.event_pattern_base, { "$or" = jsondecode("[${join(",", local.event_sub_patterns)}]") }))

  common_environment = merge(
    {
      soci_index_version = var.soci_index_version
      index_tag_suffix   = var.index_tag_suffix
    },
    var.rust_log == null ? {} : { RUST_LOG = var.rust_log },
    local.ztoc_cache_environment,
  )

  filter_environment = merge(local.common_environment, {
    soci_repository_image_tag_filters = join(",", local.filters)
    soci_index_generator_lambda_arn   = local.generator_arn
  })

  generator_environment = merge(
    local.common_environment,
    {
      span_size      = tostring(var.span_size)
      min_layer_size = tostring(var.min_layer_size)
    },
    length(var.platforms) == 0 ? {} : { platforms = join(",", var.platforms) },
    var.index_tag_cleanup ? { index_tag_cleanup = "true" } : {},
    var.index_in_place ? { index_in_place = "true" } : {},
    var.build_tool_identifier == null ? {} : { build_tool_identifier = var.build_tool_identifier },
    var.ecr_endpoint == null ? {} : { ECR_ENDPOINT = var.ecr_endpoint },
    # Only what differs from the generator's defaults (no xattr optimisation, metrics on in
    # SOCI/IndexGenerator).
    var.disable_xattrs ? { disable_xattrs = "true" } : {},
    var.emit_metrics ? {} : { emit_metrics = "false" },
    var.metrics_namespace == null ? {} : { metrics_namespace = var.metrics_namespace },
    { for name, value in {
      memory_budget_mib          = var.memory_budget_mib
      parallel_fetch_min_size    = var.parallel_fetch_min_size
      parallel_fetch_chunk_size  = var.parallel_fetch_chunk_size
      parallel_fetch_concurrency = var.parallel_fetch_concurrency
    } : name => format("%d", value) if value != null },
  )

  vpc_enabled = length(var.subnet_ids) > 0
}

################################################################################
# Log groups (created before the functions, so Lambda does not create them without retention)
################################################################################

resource "aws_cloudwatch_log_group" "filter" {
  #checkov:skip=CKV_AWS_338:Retention is the caller's choice (log_retention_in_days, 14 days by default like the Terraform port); these are operational logs, not audit logs.
  name              = local.filter_log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "generator" {
  #checkov:skip=CKV_AWS_338:Retention is the caller's choice (log_retention_in_days, 14 days by default like the Terraform port); these are operational logs, not audit logs.
  name              = local.generator_log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

################################################################################
# The generator: builds and pushes the SOCI index of one pushed image
################################################################################

resource "aws_lambda_function" "generator" {
  #checkov:skip=CKV_AWS_116:Invoked asynchronously by the filter; failed events go to the on-failure destination (soci_index_generator_on_failure_destination_arn, an event invoke config), which supersedes a DLQ.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the caller owns; the zips are reproducible and pinned by source_code_hash instead.
  #checkov:skip=CKV_AWS_50:X-Ray tracing is not used by the Rust functions (they log one JSON line per request).
  function_name = local.generator_name
  description   = "Builds the SOCI index of an image pushed to ECR and pushes it next to the image."
  role          = aws_iam_role.generator.arn

  s3_bucket        = var.deployment_assets_bucket
  s3_key           = var.soci_index_generator_lambda_asset_path
  source_code_hash = var.soci_index_generator_lambda_source_code_hash
  handler          = var.soci_index_generator_lambda_handler
  runtime          = var.soci_index_generator_lambda_runtime
  architectures    = [var.architecture]

  memory_size                    = var.soci_index_generator_lambda_memory_size
  timeout                        = var.soci_index_generator_lambda_timeout
  reserved_concurrent_executions = var.soci_index_generator_lambda_reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn

  ephemeral_storage {
    size = var.soci_index_generator_lambda_ephemeral_storage_size
  }

  environment {
    variables = local.generator_environment
  }

  dynamic "vpc_config" {
    for_each = local.vpc_enabled ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  tags = var.tags

  lifecycle {
    # Lambda refuses a VPC configuration with subnets and no security group (and the reverse
    # means nothing): catch it at plan rather than halfway through an apply.
    precondition {
      condition     = (length(var.subnet_ids) > 0) == (length(var.security_group_ids) > 0)
      error_message = "subnet_ids and security_group_ids go together: set both (the functions run in the VPC) or neither (got ${length(var.subnet_ids)} subnet(s) and ${length(var.security_group_ids)} security group(s))."
    }
  }

  depends_on = [
    aws_cloudwatch_log_group.generator,
    aws_iam_role_policy.generator,
  ]
}

# Always created, so the retry setting applies with or without a destination and no count hangs
# on a destination ARN that is unknown until its queue or topic exists. Failed asynchronous
# invocations (after the retries) go to the caller's queue or topic when one is given.
resource "aws_lambda_function_event_invoke_config" "generator" {
  function_name          = aws_lambda_function.generator.function_name
  maximum_retry_attempts = var.soci_index_generator_maximum_retry_attempts

  dynamic "destination_config" {
    for_each = var.soci_index_generator_on_failure_destination_arn == null ? [] : [var.soci_index_generator_on_failure_destination_arn]
    content {
      on_failure {
        destination = destination_config.value
      }
    }
  }

  depends_on = [aws_iam_role_policy.generator]
}

################################################################################
# The filter: matches the push against the filters and invokes the generator asynchronously
################################################################################

resource "aws_lambda_function" "filter" {
  #checkov:skip=CKV_AWS_116:EventBridge invokes it asynchronously and the generator has the on-failure destination; a filter failure is logged and retried by Lambda.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the caller owns; the zips are reproducible and pinned by source_code_hash instead.
  #checkov:skip=CKV_AWS_50:X-Ray tracing is not used by the Rust functions (they log one JSON line per request).
  function_name = local.filter_name
  description   = "Filters ECR image push events and invokes the SOCI index generator for matching images."
  role          = aws_iam_role.filter.arn

  s3_bucket        = var.deployment_assets_bucket
  s3_key           = var.ecr_image_filter_lambda_asset_path
  source_code_hash = var.ecr_image_filter_lambda_source_code_hash
  handler          = var.ecr_image_filter_lambda_handler
  runtime          = var.ecr_image_filter_lambda_runtime
  architectures    = [var.architecture]

  memory_size                    = var.ecr_image_filter_lambda_memory_size
  timeout                        = var.ecr_image_filter_lambda_timeout
  reserved_concurrent_executions = var.ecr_image_filter_lambda_reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = local.filter_environment
  }

  dynamic "vpc_config" {
    for_each = local.vpc_enabled ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  tags = var.tags

  depends_on = [
    aws_cloudwatch_log_group.filter,
    aws_iam_role_policy.filter,
    # The filter's environment names the generator by ARN; have it exist first.
    aws_lambda_function.generator,
  ]
}

################################################################################
# The trigger
################################################################################

resource "aws_cloudwatch_event_rule" "ecr_image_push" {
  name          = local.rule_name
  description   = "Successful image pushes to ECR, for the SOCI index builder."
  event_pattern = local.event_pattern_json
  tags          = var.tags

  lifecycle {
    # Inputs that describe another region or account than the provider's would give ARNs that
    # name nothing and a rule that never matches, silently.
    precondition {
      condition     = var.region == null || var.region == local.provider_region
      error_message = "region = \"${coalesce(var.region, "-")}\" but the AWS provider deploys to \"${local.provider_region}\": leave region null or make it equal to the provider's region."
    }
    precondition {
      condition     = var.account_id == null || var.account_id == local.provider_account
      error_message = "account_id = \"${coalesce(var.account_id, "-")}\" but the AWS provider's credentials are in account \"${local.provider_account}\": leave account_id null or make it equal to the provider's account."
    }
  }
}

resource "aws_cloudwatch_event_target" "filter" {
  rule = aws_cloudwatch_event_rule.ecr_image_push.name
  # The port's target id, so switching from it replaces nothing.
  target_id = "ecr-image-action-lambda-target"
  arn       = aws_lambda_function.filter.arn
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowExecutionFromEventBridge"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.filter.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.ecr_image_push.arn
}
