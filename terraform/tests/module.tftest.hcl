# Unit tests of the module with a mocked AWS provider: no credentials, no network.
# Region, account and partition come from mocked data sources so every ARN is deterministic.
# Run: terraform init && terraform test   (or `cargo xtask terraform`, which runs everything)

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  deployment_assets_bucket               = "assets-bucket"
  ecr_image_filter_lambda_asset_path     = "x86_64/ecr-image-filter.zip"
  soci_index_generator_lambda_asset_path = "x86_64/soci-index-generator.zip"
}

################################################################################
# Defaults
################################################################################

run "defaults" {
  command = plan

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern) == {
      source        = ["aws.ecr"]
      "detail-type" = ["ECR Image Action"]
      account       = ["123456789012"]
      region        = ["eu-west-1"]
      detail = {
        "action-type" = ["PUSH"]
        result        = ["SUCCESS"]
      }
    }
    error_message = "Unexpected event pattern: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }

  assert {
    condition     = aws_lambda_function.filter.function_name == "ecr-soci-indexer-ECRImageActionEventFilter" && aws_lambda_function.generator.function_name == "ecr-soci-indexer-SociIndexGenerator"
    error_message = "Function names must be <prefix>-ECRImageActionEventFilter and <prefix>-SociIndexGenerator."
  }

  assert {
    condition = alltrue([
      for f in [aws_lambda_function.filter, aws_lambda_function.generator] :
      f.handler == "bootstrap" && f.runtime == "provided.al2023" && f.architectures == tolist(["x86_64"]) && f.s3_bucket == "assets-bucket"
    ])
    error_message = "Both functions must default to bootstrap on provided.al2023, x86_64, code from the assets bucket."
  }

  assert {
    condition     = aws_lambda_function.filter.s3_key == "x86_64/ecr-image-filter.zip" && aws_lambda_function.generator.s3_key == "x86_64/soci-index-generator.zip"
    error_message = "Each function must take its own asset path."
  }

  assert {
    condition     = aws_lambda_function.generator.memory_size == 1024 && aws_lambda_function.generator.timeout == 900 && aws_lambda_function.generator.ephemeral_storage[0].size == 512
    error_message = "Generator defaults must be 1024 MB, 900 s, 512 MB ephemeral storage."
  }

  assert {
    condition = aws_lambda_function.filter.environment[0].variables == tomap({
      soci_repository_image_tag_filters = "*:*"
      soci_index_generator_lambda_arn   = "arn:aws:lambda:eu-west-1:123456789012:function:ecr-soci-indexer-SociIndexGenerator"
      soci_index_version                = "V2"
      index_tag_suffix                  = "-soci"
    })
    error_message = "Unexpected filter environment: ${jsonencode(aws_lambda_function.filter.environment[0].variables)}"
  }

  assert {
    condition = aws_lambda_function.generator.environment[0].variables == tomap({
      soci_index_version = "V2"
      span_size          = "4194304"
      min_layer_size     = "10485760"
      index_tag_suffix   = "-soci"
    })
    error_message = "Unexpected generator environment (ECR_ENDPOINT and RUST_LOG must be absent by default): ${jsonencode(aws_lambda_function.generator.environment[0].variables)}"
  }

  assert {
    condition     = aws_cloudwatch_log_group.filter.name == "/aws/lambda/ecr-soci-indexer-ECRImageActionEventFilter" && aws_cloudwatch_log_group.generator.name == "/aws/lambda/ecr-soci-indexer-SociIndexGenerator"
    error_message = "Log groups must be the functions' own /aws/lambda/<name> groups."
  }

  assert {
    condition     = aws_cloudwatch_log_group.filter.retention_in_days == 14 && aws_cloudwatch_log_group.generator.retention_in_days == 14
    error_message = "Log retention must default to 14 days."
  }

  assert {
    condition     = aws_cloudwatch_log_group.filter.kms_key_id == null && aws_lambda_function.generator.kms_key_arn == null
    error_message = "No KMS key unless kms_key_arn is set."
  }

  assert {
    condition = length(aws_lambda_function.generator.vpc_config) == 0 && alltrue([
      for p in [aws_iam_role_policy.generator.policy, aws_iam_role_policy.filter.policy] :
      length([for s in jsondecode(p).Statement : s if s.Sid == "VpcNetworkInterfaces"]) == 0
    ])
    error_message = "No VPC configuration or VPC statement without subnet_ids."
  }

  assert {
    condition     = aws_lambda_function_event_invoke_config.generator.maximum_retry_attempts == 2 && length(aws_lambda_function_event_invoke_config.generator.destination_config) == 0
    error_message = "The event invoke config exists without a destination (2 retries, no destination)."
  }

  assert {
    condition     = aws_iam_role.filter.name == "ecr-soci-indexer-ECRImageEventFilterLambdaRole" && aws_iam_role.generator.name == "ecr-soci-indexer-SociIndexGeneratorLambdaRole" && aws_cloudwatch_event_rule.ecr_image_push.name == "ecr-soci-indexer-ECRImageActionEventBridgeRule"
    error_message = "Roles and rule keep the Terraform port's names (a switch renames nothing)."
  }

  assert {
    condition     = aws_lambda_function.filter.reserved_concurrent_executions == -1 && aws_lambda_function.generator.reserved_concurrent_executions == -1
    error_message = "Concurrency must be unreserved by default."
  }

  assert {
    condition     = aws_iam_role.filter.permissions_boundary == null && aws_iam_role.generator.permissions_boundary == null
    error_message = "No permissions boundary unless one is given."
  }

  assert {
    condition     = aws_lambda_permission.events.principal == "events.amazonaws.com" && aws_lambda_permission.events.action == "lambda:InvokeFunction" && aws_lambda_permission.events.function_name == "ecr-soci-indexer-ECRImageActionEventFilter"
    error_message = "EventBridge must be allowed to invoke the filter."
  }

  assert {
    condition     = jsondecode(aws_iam_role.filter.assume_role_policy).Statement[0].Principal.Service == "lambda.amazonaws.com" && jsondecode(aws_iam_role.generator.assume_role_policy).Statement[0].Action == "sts:AssumeRole"
    error_message = "Both roles must be assumable by Lambda."
  }
}

# Resource-to-resource wiring needs the (mocked) computed ARNs, so it is checked after an apply.
run "wiring" {
  # The mocked provider invents computed values; give the ARNs the provider validates a valid shape,
  # distinct per resource so the equality checks below can fail.
  override_resource {
    target = aws_iam_role.filter
    values = { arn = "arn:aws:iam::123456789012:role/ecr-soci-indexer-ECRImageEventFilterLambdaRole", id = "ecr-soci-indexer-ECRImageEventFilterLambdaRole" }
  }
  override_resource {
    target = aws_iam_role.generator
    values = { arn = "arn:aws:iam::123456789012:role/ecr-soci-indexer-SociIndexGeneratorLambdaRole", id = "ecr-soci-indexer-SociIndexGeneratorLambdaRole" }
  }
  override_resource {
    target = aws_lambda_function.filter
    values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ecr-soci-indexer-ECRImageActionEventFilter" }
  }
  override_resource {
    target = aws_lambda_function.generator
    values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ecr-soci-indexer-SociIndexGenerator" }
  }
  override_resource {
    target = aws_cloudwatch_event_rule.ecr_image_push
    values = { arn = "arn:aws:events:eu-west-1:123456789012:rule/ecr-soci-indexer-ECRImageActionEventBridgeRule" }
  }

  assert {
    condition     = aws_cloudwatch_event_target.filter.arn == aws_lambda_function.filter.arn && aws_cloudwatch_event_target.filter.rule == aws_cloudwatch_event_rule.ecr_image_push.name
    error_message = "The rule's target must be the filter function."
  }

  assert {
    condition     = aws_lambda_permission.events.source_arn == aws_cloudwatch_event_rule.ecr_image_push.arn
    error_message = "The invoke permission must be restricted to the rule (source_arn)."
  }

  assert {
    condition     = aws_lambda_function.filter.role == aws_iam_role.filter.arn && aws_lambda_function.generator.role == aws_iam_role.generator.arn
    error_message = "Each function must run with its own role."
  }

  assert {
    condition     = aws_iam_role_policy.filter.role == aws_iam_role.filter.id && aws_iam_role_policy.generator.role == aws_iam_role.generator.id
    error_message = "Each policy must be attached to its function's role."
  }

  assert {
    condition = (
      output.ecr_image_filter_lambda_function_arn == aws_lambda_function.filter.arn &&
      output.soci_index_generator_lambda_function_arn == aws_lambda_function.generator.arn &&
      output.ecr_image_filter_lambda_role_arn == aws_iam_role.filter.arn &&
      output.soci_index_generator_lambda_role_arn == aws_iam_role.generator.arn &&
      output.event_rule_arn == aws_cloudwatch_event_rule.ecr_image_push.arn &&
      output.ecr_image_filter_lambda_log_group_name == "/aws/lambda/ecr-soci-indexer-ECRImageActionEventFilter" &&
      output.soci_index_generator_lambda_log_group_name == "/aws/lambda/ecr-soci-indexer-SociIndexGenerator" &&
      output.soci_index_generator_lambda_function_name == "ecr-soci-indexer-SociIndexGenerator" &&
      output.ecr_image_filter_lambda_function_name == "ecr-soci-indexer-ECRImageActionEventFilter"
    )
    error_message = "Outputs must expose the functions, roles, rule and log groups."
  }
}

################################################################################
# IAM
################################################################################

run "iam_actions" {
  command = plan

  assert {
    condition = toset(one([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Action if s.Sid == "EcrRepositories"])) == toset([
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchCheckLayerAvailability",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
    ])
    error_message = "Generator must have exactly the pull/push ECR actions on the repositories."
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s if s.Sid == "EcrAuthorizationToken"] == [{
      Sid      = "EcrAuthorizationToken"
      Effect   = "Allow"
      Action   = ["ecr:GetAuthorizationToken"]
      Resource = ["*"]
    }]
    error_message = "GetAuthorizationToken must be granted on * (it has no resource-level permissions), alone."
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s if s.Sid == "Logs"] == [{
      Sid      = "Logs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/ecr-soci-indexer-SociIndexGenerator:*"]
    }]
    error_message = "Generator may only write to its own log group."
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.filter.policy).Statement == [
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/ecr-soci-indexer-ECRImageActionEventFilter:*"]
      },
      {
        Sid      = "InvokeGenerator"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = ["arn:aws:lambda:eu-west-1:123456789012:function:ecr-soci-indexer-SociIndexGenerator"]
      },
    ]
    error_message = "Filter must only write its logs and invoke the generator: ${aws_iam_role_policy.filter.policy}"
  }

  assert {
    condition     = length(jsondecode(aws_iam_role_policy.generator.policy).Statement) == 3
    error_message = "Without KMS or an on-failure destination the generator has exactly 3 statements."
  }
}

################################################################################
# ECR resource ARNs derived from the filters (a table of cases)
################################################################################

run "filters_all" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["*:*"]
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Resource if s.Sid == "EcrRepositories"]) == ["arn:aws:ecr:eu-west-1:123456789012:repository/*"]
    error_message = "*:* must grant every repository."
  }
}

run "filters_one_repository" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["repo:*"]
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Resource if s.Sid == "EcrRepositories"]) == ["arn:aws:ecr:eu-west-1:123456789012:repository/repo"]
    error_message = "repo:* must grant exactly repository/repo, got ${jsonencode(output.ecr_repository_arns)}."
  }
}

run "filters_namespace_glob" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["team/*:v*"]
  }
  assert {
    condition     = output.ecr_repository_arns == ["arn:aws:ecr:eu-west-1:123456789012:repository/team/*"]
    error_message = "team/*:v* must grant repository/team/*, got ${jsonencode(output.ecr_repository_arns)}."
  }
  assert {
    condition     = aws_lambda_function.filter.environment[0].variables.soci_repository_image_tag_filters == "team/*:v*"
    error_message = "The filter must receive the filters as given."
  }
}

run "filters_several" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["repo:latest", " team/*:v* ", "repo:v?", "apps/web:release-*"]
  }
  assert {
    condition = output.ecr_repository_arns == [
      "arn:aws:ecr:eu-west-1:123456789012:repository/repo",
      "arn:aws:ecr:eu-west-1:123456789012:repository/team/*",
      "arn:aws:ecr:eu-west-1:123456789012:repository/apps/web",
    ]
    error_message = "Several filters must grant each distinct repository once, in order, got ${jsonencode(output.ecr_repository_arns)}."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Resource if s.Sid == "EcrRepositories"]) == output.ecr_repository_arns
    error_message = "The policy must use the derived ARNs."
  }
  assert {
    condition     = aws_lambda_function.filter.environment[0].variables.soci_repository_image_tag_filters == "repo:latest,team/*:v*,repo:v?,apps/web:release-*"
    error_message = "Filters must be trimmed and comma-joined for the filter Lambda, got ${aws_lambda_function.filter.environment[0].variables.soci_repository_image_tag_filters}."
  }
}

run "filters_wildcard_wins" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["repo:*", "*:v1"]
  }
  assert {
    condition     = output.ecr_repository_arns == ["arn:aws:ecr:eu-west-1:123456789012:repository/*"]
    error_message = "A bare * repository part must collapse the list to repository/*, got ${jsonencode(output.ecr_repository_arns)}."
  }
}

run "filters_prefix_glob" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["*-service:prod-*"]
  }
  assert {
    condition     = output.ecr_repository_arns == ["arn:aws:ecr:eu-west-1:123456789012:repository/*-service"]
    error_message = "A partial repository glob stays a glob in the ARN, got ${jsonencode(output.ecr_repository_arns)}."
  }
}

################################################################################
# Region, account and partition
################################################################################

run "explicit_region_and_account" {
  command = plan
  override_data {
    target = data.aws_region.current
    values = {
      id   = "us-west-2"
      name = "us-west-2"
    }
  }
  override_data {
    target = data.aws_caller_identity.current
    values = {
      account_id = "210987654321"
    }
  }
  variables {
    region     = "us-west-2"
    account_id = "210987654321"
  }
  assert {
    condition     = output.ecr_repository_arns == ["arn:aws:ecr:us-west-2:210987654321:repository/*"] && aws_lambda_function.filter.environment[0].variables.soci_index_generator_lambda_arn == "arn:aws:lambda:us-west-2:210987654321:function:ecr-soci-indexer-SociIndexGenerator"
    error_message = "region and account_id inputs (equal to the provider's) must be used in the ARNs."
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern).region == ["us-west-2"] && jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern).account == ["210987654321"]
    error_message = "The event pattern must pin the given region and account."
  }
}

run "partition_china" {
  command = plan
  override_data {
    target = data.aws_partition.current
    values = {
      partition  = "aws-cn"
      dns_suffix = "amazonaws.com.cn"
    }
  }
  override_data {
    target = data.aws_region.current
    values = {
      id   = "cn-north-1"
      name = "cn-north-1"
    }
  }
  variables {
    soci_repository_image_tag_filters = ["team/*:v*"]
  }
  assert {
    condition     = output.ecr_repository_arns == ["arn:aws-cn:ecr:cn-north-1:123456789012:repository/team/*"]
    error_message = "ECR ARNs must use the provider's partition, got ${jsonencode(output.ecr_repository_arns)}."
  }
  assert {
    condition = alltrue([
      for s in concat(jsondecode(aws_iam_role_policy.generator.policy).Statement, jsondecode(aws_iam_role_policy.filter.policy).Statement) :
      alltrue([for r in s.Resource : r == "*" || startswith(r, "arn:aws-cn:")])
    ])
    error_message = "Every ARN in the policies must be in the aws-cn partition."
  }
}

################################################################################
# Options
################################################################################

run "every_option" {
  command = plan
  variables {
    resource_prefix                                            = "soci"
    soci_index_version                                         = "V1"
    architecture                                               = "arm64"
    span_size                                                  = 1048576
    min_layer_size                                             = 0
    index_tag_suffix                                           = ".soci-index"
    ecr_endpoint                                               = "https://api.ecr.eu-west-1.vpce.example"
    rust_log                                                   = "debug"
    platforms                                                  = ["linux/amd64", "linux/arm64/v8"]
    build_tool_identifier                                      = "acme-soci v1"
    soci_index_generator_lambda_memory_size                    = 2048
    soci_index_generator_lambda_timeout                        = 600
    soci_index_generator_lambda_ephemeral_storage_size         = 1024
    soci_index_generator_lambda_reserved_concurrent_executions = 5
    ecr_image_filter_lambda_reserved_concurrent_executions     = 2
    ecr_image_filter_lambda_source_code_hash                   = "ZmlsdGVy"
    soci_index_generator_lambda_source_code_hash               = "Z2VuZXJhdG9y"
    log_retention_in_days                                      = 90
    kms_key_arn                                                = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    subnet_ids                                                 = ["subnet-1", "subnet-2"]
    security_group_ids                                         = ["sg-1"]
    soci_index_generator_on_failure_destination_arn            = "arn:aws:sqs:eu-west-1:123456789012:soci-failures"
    soci_index_generator_maximum_retry_attempts                = 1
  }

  assert {
    condition = aws_lambda_function.generator.environment[0].variables == tomap({
      soci_index_version    = "V1"
      span_size             = "1048576"
      min_layer_size        = "0"
      index_tag_suffix      = ".soci-index"
      platforms             = "linux/amd64,linux/arm64/v8"
      build_tool_identifier = "acme-soci v1"
      ECR_ENDPOINT          = "https://api.ecr.eu-west-1.vpce.example"
      RUST_LOG              = "debug"
    })
    error_message = "Unexpected generator environment: ${jsonencode(aws_lambda_function.generator.environment[0].variables)}"
  }

  assert {
    condition = aws_lambda_function.filter.environment[0].variables == tomap({
      soci_repository_image_tag_filters = "*:*"
      soci_index_generator_lambda_arn   = "arn:aws:lambda:eu-west-1:123456789012:function:soci-SociIndexGenerator"
      soci_index_version                = "V1"
      index_tag_suffix                  = ".soci-index"
      RUST_LOG                          = "debug"
    })
    error_message = "Unexpected filter environment (no ECR_ENDPOINT, no span settings): ${jsonencode(aws_lambda_function.filter.environment[0].variables)}"
  }

  assert {
    condition     = aws_lambda_function.filter.architectures == tolist(["arm64"]) && aws_lambda_function.generator.architectures == tolist(["arm64"])
    error_message = "architecture must apply to both functions."
  }

  assert {
    condition     = aws_lambda_function.generator.memory_size == 2048 && aws_lambda_function.generator.timeout == 600 && aws_lambda_function.generator.ephemeral_storage[0].size == 1024
    error_message = "Generator sizing inputs must apply."
  }

  assert {
    condition     = aws_lambda_function.generator.reserved_concurrent_executions == 5 && aws_lambda_function.filter.reserved_concurrent_executions == 2
    error_message = "Reserved concurrency inputs must apply."
  }

  assert {
    condition     = aws_lambda_function.filter.source_code_hash == "ZmlsdGVy" && aws_lambda_function.generator.source_code_hash == "Z2VuZXJhdG9y"
    error_message = "source_code_hash must come from the hash inputs (so a new zip redeploys)."
  }

  assert {
    condition = alltrue([
      for g in [aws_cloudwatch_log_group.filter, aws_cloudwatch_log_group.generator] :
      g.retention_in_days == 90 && g.kms_key_id == "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ])
    error_message = "Log groups must take log_retention_in_days and kms_key_arn."
  }

  assert {
    condition = alltrue([
      for f in [aws_lambda_function.filter, aws_lambda_function.generator] :
      f.kms_key_arn == "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" &&
      f.vpc_config[0].subnet_ids == toset(["subnet-1", "subnet-2"]) && f.vpc_config[0].security_group_ids == toset(["sg-1"])
    ])
    error_message = "Both functions must take the KMS key and the VPC settings."
  }

  assert {
    condition = alltrue([
      for p in [aws_iam_role_policy.generator.policy, aws_iam_role_policy.filter.policy] :
      length([for s in jsondecode(p).Statement : s if s.Sid == "VpcNetworkInterfaces"]) == 1
    ])
    error_message = "Both roles need the network interface statement when subnets are given."
  }

  assert {
    condition     = aws_lambda_function_event_invoke_config.generator.destination_config[0].on_failure[0].destination == "arn:aws:sqs:eu-west-1:123456789012:soci-failures" && aws_lambda_function_event_invoke_config.generator.maximum_retry_attempts == 1 && aws_lambda_function_event_invoke_config.generator.function_name == "soci-SociIndexGenerator"
    error_message = "The generator's failed async invocations must go to the destination."
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s if s.Sid == "SendFailedInvocations"] == [{
      Sid      = "SendFailedInvocations"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = ["arn:aws:sqs:eu-west-1:123456789012:soci-failures"]
    }]
    error_message = "The generator role must be allowed to send to the SQS destination."
  }

  assert {
    condition = alltrue([
      for p in [aws_iam_role_policy.generator.policy, aws_iam_role_policy.filter.policy] :
      [for s in jsondecode(p).Statement : s.Action if s.Sid == "DecryptEnvironment"] == [["kms:Decrypt"]]
    ])
    error_message = "Both roles must be allowed to decrypt with the KMS key."
  }
}

run "on_failure_sns" {
  command = plan
  variables {
    soci_index_generator_on_failure_destination_arn = "arn:aws:sns:eu-west-1:123456789012:soci-failures"
  }
  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Action if s.Sid == "SendFailedInvocations"] == [["sns:Publish"]]
    error_message = "An SNS destination needs sns:Publish."
  }
  assert {
    condition     = aws_lambda_function_event_invoke_config.generator.maximum_retry_attempts == 2
    error_message = "Retries default to 2."
  }
}

run "boundary_and_tags_everywhere" {
  command = plan
  variables {
    permissions_boundary_arn = "arn:aws:iam::123456789012:policy/Boundary"
    tags = {
      Team = "platform"
      Cost = "soci"
    }
  }
  assert {
    condition     = aws_iam_role.filter.permissions_boundary == "arn:aws:iam::123456789012:policy/Boundary" && aws_iam_role.generator.permissions_boundary == "arn:aws:iam::123456789012:policy/Boundary"
    error_message = "Both roles must carry the permissions boundary."
  }
  assert {
    condition = alltrue([
      for t in [
        aws_iam_role.filter.tags,
        aws_iam_role.generator.tags,
        aws_lambda_function.filter.tags,
        aws_lambda_function.generator.tags,
        aws_cloudwatch_log_group.filter.tags,
        aws_cloudwatch_log_group.generator.tags,
        aws_cloudwatch_event_rule.ecr_image_push.tags,
      ] : t == tomap({ Team = "platform", Cost = "soci" })
    ])
    error_message = "Every taggable resource must carry the tags."
  }
}

################################################################################
# Rejected input
################################################################################

run "reject_filter_without_tag_part" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["team/*"]
  }
  expect_failures = [var.soci_repository_image_tag_filters]
}

run "reject_filter_with_two_colons" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["*:*", "repo:v1:extra"]
  }
  expect_failures = [var.soci_repository_image_tag_filters]
}

run "reject_filter_with_comma" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["a:*,b:*"]
  }
  expect_failures = [var.soci_repository_image_tag_filters]
}

run "reject_filter_uppercase_repository" {
  command = plan
  variables {
    soci_repository_image_tag_filters = ["Team:*"]
  }
  expect_failures = [var.soci_repository_image_tag_filters]
}

run "reject_empty_filter_list" {
  command = plan
  variables {
    soci_repository_image_tag_filters = []
  }
  expect_failures = [var.soci_repository_image_tag_filters]
}

run "reject_index_version" {
  command = plan
  variables {
    soci_index_version = "v2"
  }
  expect_failures = [var.soci_index_version]
}

run "reject_architecture" {
  command = plan
  variables {
    architecture = "amd64"
  }
  expect_failures = [var.architecture]
}

run "reject_on_failure_destination" {
  command = plan
  variables {
    soci_index_generator_on_failure_destination_arn = "arn:aws:s3:::bucket"
  }
  expect_failures = [var.soci_index_generator_on_failure_destination_arn]
}

run "reject_log_retention" {
  command = plan
  variables {
    log_retention_in_days = 15
  }
  expect_failures = [var.log_retention_in_days]
}

run "reject_long_prefix" {
  command = plan
  variables {
    resource_prefix = "a-prefix-that-is-far-too-long-for-lambda-names"
  }
  expect_failures = [var.resource_prefix]
}

run "reject_ephemeral_storage" {
  command = plan
  variables {
    soci_index_generator_lambda_ephemeral_storage_size = 256
  }
  expect_failures = [var.soci_index_generator_lambda_ephemeral_storage_size]
}

run "reject_security_groups_without_subnets" {
  command = plan
  variables {
    security_group_ids = ["sg-1"]
  }
  expect_failures = [aws_lambda_function.generator]
}
