################################################################################
# Policies, written as HCL objects so every ARN and action is known at plan time
################################################################################

locals {
  lambda_assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "LambdaAssumeRole"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })

  # Pulling an image and pushing the index through the registry API. The generator never lists
  # or describes images: manifests and blobs are fetched by digest/tag (BatchGetImage,
  # GetDownloadUrlForLayer) and existence checks are blob HEADs (BatchCheckLayerAvailability).
  ecr_repository_actions = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
  ]

  log_actions = ["logs:CreateLogStream", "logs:PutLogEvents"]

  kms_statements = var.kms_key_arn == null ? [] : [{
    Sid      = "DecryptEnvironment"
    Effect   = "Allow"
    Action   = ["kms:Decrypt"]
    Resource = [var.kms_key_arn]
  }]

  on_failure_service = var.soci_index_generator_on_failure_destination_arn == null ? null : split(":", var.soci_index_generator_on_failure_destination_arn)[2]
  on_failure_statements = local.on_failure_service == null ? [] : [{
    Sid      = "SendFailedInvocations"
    Effect   = "Allow"
    Action   = [local.on_failure_service == "sqs" ? "sqs:SendMessage" : "sns:Publish"]
    Resource = [var.soci_index_generator_on_failure_destination_arn]
  }]

  generator_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid      = "Logs"
          Effect   = "Allow"
          Action   = local.log_actions
          Resource = ["${local.generator_log_group_arn}:*"]
        },
        {
          Sid      = "EcrAuthorizationToken"
          Effect   = "Allow"
          Action   = ["ecr:GetAuthorizationToken"]
          Resource = ["*"]
        },
        {
          Sid      = "EcrRepositories"
          Effect   = "Allow"
          Action   = local.ecr_repository_actions
          Resource = local.ecr_repository_arns
        },
      ],
      local.kms_statements,
      local.on_failure_statements,
    )
  }

  filter_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid      = "Logs"
          Effect   = "Allow"
          Action   = local.log_actions
          Resource = ["${local.filter_log_group_arn}:*"]
        },
        {
          Sid      = "InvokeGenerator"
          Effect   = "Allow"
          Action   = ["lambda:InvokeFunction"]
          Resource = [local.generator_arn]
        },
      ],
      local.kms_statements,
    )
  }

  vpc_access_policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

################################################################################
# Generator role
################################################################################

resource "aws_iam_role" "generator" {
  name                 = "${var.resource_prefix}-SociIndexGenerator"
  description          = "Execution role of ${local.generator_name}"
  assume_role_policy   = local.lambda_assume_role_policy
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy" "generator" {
  name   = "${local.generator_name}-policy"
  role   = aws_iam_role.generator.id
  policy = jsonencode(local.generator_policy)
}

resource "aws_iam_role_policy_attachment" "generator_vpc" {
  count = local.vpc_enabled ? 1 : 0

  role       = aws_iam_role.generator.name
  policy_arn = local.vpc_access_policy_arn
}

################################################################################
# Filter role
################################################################################

resource "aws_iam_role" "filter" {
  name                 = "${var.resource_prefix}-ECRImageActionEventFilter"
  description          = "Execution role of ${local.filter_name}"
  assume_role_policy   = local.lambda_assume_role_policy
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy" "filter" {
  name   = "${local.filter_name}-policy"
  role   = aws_iam_role.filter.id
  policy = jsonencode(local.filter_policy)
}

resource "aws_iam_role_policy_attachment" "filter_vpc" {
  count = local.vpc_enabled ? 1 : 0

  role       = aws_iam_role.filter.name
  policy_arn = local.vpc_access_policy_arn
}
