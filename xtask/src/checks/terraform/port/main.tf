# The Terraform port's resources (kahlstrm/ecr-soci-indexer/aws v1.x) at the port's addresses and
# with the port's names, reduced to what a switch of `source` touches. `cargo xtask terraform`
# applies it against moto, then points the same module block at terraform/ and plans: nothing
# with a name (function, log group, rule, role) may be destroyed. The port's plan-time helper
# (RepositoryNameParsingLambda through the archive provider) is left out: it has no counterpart
# and its destruction collides with nothing.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "deployment_assets_bucket" { type = string }
variable "ecr_image_filter_lambda_asset_path" { type = string }
variable "soci_index_generator_lambda_asset_path" { type = string }
variable "region" { type = string }
variable "account_id" { type = string }
variable "resource_prefix" { type = string }
variable "soci_repository_image_tag_filters" { type = list(string) }

locals {
  p = var.resource_prefix != "" ? "${var.resource_prefix}-" : ""
  assume = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "lambda.amazonaws.com" } }]
  })
}

resource "aws_lambda_function" "ecr_image_action_event_filtering" {
  function_name = "${local.p}ECRImageActionEventFilter"
  handler       = "bootstrap"
  runtime       = "provided.al2023"
  role          = aws_iam_role.ecr_image_action_event_filtering.arn
  timeout       = 900
  s3_bucket     = var.deployment_assets_bucket
  s3_key        = var.ecr_image_filter_lambda_asset_path
  environment {
    variables = {
      soci_repository_image_tag_filters = join(",", var.soci_repository_image_tag_filters)
      soci_index_generator_lambda_arn   = aws_lambda_function.soci_index_generator.arn
    }
  }
}

resource "aws_lambda_function" "soci_index_generator" {
  function_name = "${local.p}SociIndexGenerator"
  handler       = "bootstrap"
  runtime       = "provided.al2023"
  role          = aws_iam_role.soci_index_generator.arn
  timeout       = 900
  memory_size   = 1024
  s3_bucket     = var.deployment_assets_bucket
  s3_key        = var.soci_index_generator_lambda_asset_path
  ephemeral_storage {
    size = 10240
  }
}

resource "aws_iam_role" "ecr_image_action_event_filtering" {
  name               = "${local.p}ECRImageEventFilterLambdaRole"
  assume_role_policy = local.assume
}

resource "aws_iam_role" "soci_index_generator" {
  name               = "${local.p}SociIndexGeneratorLambdaRole"
  assume_role_policy = local.assume
}

resource "aws_iam_policy" "ecr_image_action_event_filtering_lambda_invoke" {
  name   = "${local.p}ECRImageEventFilterLambdaInvokePolicy"
  policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = ["lambda:InvokeFunction"], Resource = [aws_lambda_function.soci_index_generator.arn] }] })
}

resource "aws_iam_role_policy_attachment" "ecr_image_action_event_filtering_lambda_invoke" {
  role       = aws_iam_role.ecr_image_action_event_filtering.name
  policy_arn = aws_iam_policy.ecr_image_action_event_filtering_lambda_invoke.arn
}

resource "aws_cloudwatch_log_group" "ecr_image_action_event_filtering_lg" {
  name              = "/aws/lambda/${aws_lambda_function.ecr_image_action_event_filtering.function_name}"
  retention_in_days = 14
}

resource "aws_iam_policy" "ecr_image_action_event_filtering_lambda_cloudwatch" {
  name   = "${local.p}ECRImageEventFilterLambdaLogPolicy"
  policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = ["${aws_cloudwatch_log_group.ecr_image_action_event_filtering_lg.arn}:*"] }] })
}

resource "aws_iam_role_policy_attachment" "ecr_image_action_event_filtering_lambda_cloudwatch" {
  role       = aws_iam_role.ecr_image_action_event_filtering.name
  policy_arn = aws_iam_policy.ecr_image_action_event_filtering_lambda_cloudwatch.arn
}

resource "aws_cloudwatch_log_group" "soci_index_generator_lg" {
  name              = "/aws/lambda/${aws_lambda_function.soci_index_generator.function_name}"
  retention_in_days = 14
}

resource "aws_iam_policy" "soci_index_generator_lambda_cloudwatch" {
  name   = "${local.p}SOCIIndexGeneratorLambdaLogPolicy"
  policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = ["${aws_cloudwatch_log_group.soci_index_generator_lg.arn}:*"] }] })
}

resource "aws_iam_role_policy_attachment" "soci_index_generator_lambda_cloudwatch" {
  role       = aws_iam_role.soci_index_generator.name
  policy_arn = aws_iam_policy.soci_index_generator_lambda_cloudwatch.arn
}

resource "aws_iam_policy" "soci_index_generator_ecr_repository_policy" {
  name = "${local.p}SociIndexGeneratorLambdaECRPolicy"
  policy = jsonencode({ Version = "2012-10-17", Statement = [
    { Effect = "Allow", Action = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:PutImage"], Resource = ["arn:aws:ecr:${var.region}:${var.account_id}:repository/*"] },
    { Effect = "Allow", Action = ["ecr:GetAuthorizationToken"], Resource = ["*"] },
  ] })
}

resource "aws_iam_role_policy_attachment" "soci_index_generator_ecr_repository" {
  role       = aws_iam_role.soci_index_generator.name
  policy_arn = aws_iam_policy.soci_index_generator_ecr_repository_policy.arn
}

resource "aws_cloudwatch_event_rule" "ecr_image_action_event" {
  name = "${local.p}ECRImageActionEventBridgeRule"
  event_pattern = jsonencode({
    source        = ["aws.ecr"]
    "detail-type" = ["ECR Image Action"]
    detail        = { "action-type" = ["PUSH"], result = ["SUCCESS"] }
    region        = [var.region]
  })
  state = "ENABLED"
}

resource "aws_cloudwatch_event_target" "lambda_target" {
  rule      = aws_cloudwatch_event_rule.ecr_image_action_event.name
  target_id = "ecr-image-action-lambda-target"
  arn       = aws_lambda_function.ecr_image_action_event_filtering.arn
}

resource "aws_lambda_permission" "allow_event_bridge" {
  statement_id  = "AllowExecutionFromEventBridge"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.ecr_image_action_event_filtering.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.ecr_image_action_event.arn
}
