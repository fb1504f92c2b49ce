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

  # The index tag cleanup deletes `<tag><suffix>` with BatchDeleteImage (the tag only); without
  # it the generator never deletes anything.
  generator_ecr_actions = concat(local.ecr_repository_actions, var.index_tag_cleanup ? ["ecr:BatchDeleteImage"] : [])

  log_actions = ["logs:CreateLogStream", "logs:PutLogEvents"]

  kms_statements = var.kms_key_arn == null ? [] : [{
    Sid      = "DecryptEnvironment"
    Effect   = "Allow"
    Action   = ["kms:Decrypt"]
    Resource = [var.kms_key_arn]
  }]

  on_failure_service = var.soci_index_generator_on_failure_destination_arn == null ? null : split(":", var.soci_index_generator_on_failure_destination_arn)[2]
  # Lambda delivers failure records with the function's role: an encrypted queue or topic needs
  # the role to make a data key with the destination's key, or the records are dropped.
  on_failure_kms_key_arn = var.soci_index_generator_on_failure_destination_arn == null ? null : coalesce(var.soci_index_generator_on_failure_destination_kms_key_arn, var.kms_key_arn, "none")
  on_failure_statements = local.on_failure_service == null ? [] : concat(
    [{
      Sid      = "SendFailedInvocations"
      Effect   = "Allow"
      Action   = [local.on_failure_service == "sqs" ? "sqs:SendMessage" : "sns:Publish"]
      Resource = [var.soci_index_generator_on_failure_destination_arn]
    }],
    local.on_failure_kms_key_arn == "none" ? [] : [{
      Sid      = "EncryptFailedInvocations"
      Effect   = "Allow"
      Action   = ["kms:GenerateDataKey*", "kms:Decrypt"]
      Resource = [local.on_failure_kms_key_arn]
    }],
  )

  # What Lambda needs to attach the functions to the VPC: the network interface actions of
  # AWSLambdaVPCAccessExecutionRole without its logs:* on "*" (which would undo the per-log-group
  # scoping). EC2 grants Describe* only on "*", and Lambda manages the interfaces in the
  # caller's subnets, so the statement has no narrower resource.
  vpc_statements = local.vpc_enabled ? [{
    Sid    = "VpcNetworkInterfaces"
    Effect = "Allow"
    Action = [
      "ec2:CreateNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSubnets",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    Resource = ["*"]
  }] : []

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
          Action   = local.generator_ecr_actions
          Resource = local.ecr_repository_arns
        },
      ],
      local.kms_statements,
      local.on_failure_statements,
      local.vpc_statements,
      local.ztoc_cache_statements,
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
      local.vpc_statements,
    )
  }
}

################################################################################
# Generator role
################################################################################

resource "aws_iam_role" "generator" {
  name                 = local.generator_role_name
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


################################################################################
# Filter role
################################################################################

resource "aws_iam_role" "filter" {
  name                 = local.filter_role_name
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
