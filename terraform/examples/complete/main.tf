provider "aws" {
  region = var.region
}

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  name = "soci-complete"
  tags = {
    Project     = "soci-index-builder"
    Environment = "example"
  }
}

################################################################################
# Supporting resources: a key for logs, environment and the failure queue; the failure queue
################################################################################

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policies name the key itself with "*"; the account root keeps administration as AWS recommends.
  #checkov:skip=CKV_AWS_111:Key policies name the key itself with "*"; the account root keeps administration as AWS recommends.
  #checkov:skip=CKV_AWS_356:Key policies name the key itself with "*"; the account root keeps administration as AWS recommends.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsUse"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type = "Service"
      # The Logs service principal carries the partition's DNS suffix (amazonaws.com.cn in aws-cn).
      identifiers = ["logs.${var.region}.${data.aws_partition.current.dns_suffix}"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws/lambda/${local.name}-*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description         = "${local.name}: log groups, Lambda environment, failure queue"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.kms.json
  tags                = local.tags
}

resource "aws_sqs_queue" "failures" {
  name                      = "${local.name}-failures"
  kms_master_key_id         = aws_kms_key.this.arn
  message_retention_seconds = 1209600
  tags                      = local.tags
}

################################################################################
# The module with every option set
################################################################################

module "soci_index_builder" {
  source = "../../"

  # Inputs of the Terraform port.
  deployment_assets_bucket               = var.deployment_assets_bucket
  ecr_image_filter_lambda_asset_path     = var.ecr_image_filter_lambda_asset_path
  soci_index_generator_lambda_asset_path = var.soci_index_generator_lambda_asset_path
  ecr_image_filter_lambda_handler        = "bootstrap"
  ecr_image_filter_lambda_runtime        = "provided.al2023"
  soci_index_generator_lambda_handler    = "bootstrap"
  soci_index_generator_lambda_runtime    = "provided.al2023"
  region                                 = var.region
  account_id                             = data.aws_caller_identity.current.account_id
  soci_repository_image_tag_filters      = ["team/*:v*", "base-images:*", "apps/web:release-?*"]
  resource_prefix                        = local.name

  # What the generator builds.
  soci_index_version = "V2"
  span_size          = 4194304
  min_layer_size     = 10485760
  index_tag_suffix   = "-soci"
  ecr_endpoint       = var.ecr_endpoint
  rust_log           = "info"

  # Lambda sizing and deployment.
  architecture                                               = "arm64"
  ecr_image_filter_lambda_source_code_hash                   = var.ecr_image_filter_lambda_source_code_hash
  soci_index_generator_lambda_source_code_hash               = var.soci_index_generator_lambda_source_code_hash
  ecr_image_filter_lambda_memory_size                        = 128
  ecr_image_filter_lambda_timeout                            = 30
  ecr_image_filter_lambda_reserved_concurrent_executions     = 10
  soci_index_generator_lambda_memory_size                    = 2048
  soci_index_generator_lambda_timeout                        = 900
  soci_index_generator_lambda_ephemeral_storage_size         = 512
  soci_index_generator_lambda_reserved_concurrent_executions = 20
  soci_index_generator_on_failure_destination_arn            = aws_sqs_queue.failures.arn
  soci_index_generator_maximum_retry_attempts                = 2

  # Security, networking, logging.
  log_retention_in_days    = 30
  kms_key_arn              = aws_kms_key.this.arn
  permissions_boundary_arn = var.permissions_boundary_arn
  subnet_ids               = var.subnet_ids
  security_group_ids       = var.security_group_ids
  tags                     = local.tags
}
