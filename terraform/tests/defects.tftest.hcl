# What a platform engineer meets on real AWS that moto does not enforce (IAM, KMS, Lambda's own
# argument checks), each pinned by a plan with a mocked provider.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  deployment_assets_bucket               = "assets-bucket"
  ecr_image_filter_lambda_asset_path     = "x86_64/ecr-image-filter.zip"
  soci_index_generator_lambda_asset_path = "x86_64/soci-index-generator.zip"
}

# Retries apply without a destination: the event invoke config always exists, only the
# destination is conditional (so an unknown destination ARN never decides a count).
run "retries_without_destination" {
  command = plan
  variables {
    soci_index_generator_maximum_retry_attempts = 0
  }
  assert {
    condition     = aws_lambda_function_event_invoke_config.generator.maximum_retry_attempts == 0 && length(aws_lambda_function_event_invoke_config.generator.destination_config) == 0
    error_message = "maximum_retry_attempts must apply without an on-failure destination."
  }
}

# An encrypted failure destination: Lambda sends with the generator's role, which must be able to
# encrypt with the destination's key.
run "encrypted_destination_same_key" {
  command = plan
  variables {
    kms_key_arn                                     = "arn:aws:kms:eu-west-1:123456789012:key/aaaa"
    soci_index_generator_on_failure_destination_arn = "arn:aws:sqs:eu-west-1:123456789012:failures"
  }
  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s if s.Sid == "EncryptFailedInvocations"] == [{
      Sid      = "EncryptFailedInvocations"
      Effect   = "Allow"
      Action   = ["kms:GenerateDataKey*", "kms:Decrypt"]
      Resource = ["arn:aws:kms:eu-west-1:123456789012:key/aaaa"]
    }]
    error_message = "The generator must be able to encrypt failure records with the destination's key: ${aws_iam_role_policy.generator.policy}"
  }
}

run "encrypted_destination_own_key" {
  command = plan
  variables {
    kms_key_arn                                             = "arn:aws:kms:eu-west-1:123456789012:key/aaaa"
    soci_index_generator_on_failure_destination_arn         = "arn:aws:sns:eu-west-1:123456789012:failures"
    soci_index_generator_on_failure_destination_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/bbbb"
  }
  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Resource if s.Sid == "EncryptFailedInvocations"] == [["arn:aws:kms:eu-west-1:123456789012:key/bbbb"]]
    error_message = "The destination's own key must be granted: ${aws_iam_role_policy.generator.policy}"
  }
}

run "reject_subnets_without_security_groups" {
  command = plan
  variables {
    subnet_ids = ["subnet-1"]
  }
  expect_failures = [aws_lambda_function.generator]
}

# VPC access: only the network interface actions, not the managed policy's logs:* on "*".
run "vpc_without_managed_policy" {
  command = plan
  variables {
    subnet_ids         = ["subnet-1"]
    security_group_ids = ["sg-1"]
  }
  assert {
    condition = alltrue([
      for p in [aws_iam_role_policy.generator.policy, aws_iam_role_policy.filter.policy] :
      [for s in jsondecode(p).Statement : s if s.Sid == "VpcNetworkInterfaces"] == [{
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
      }]
    ])
    error_message = "Both roles need exactly the ENI actions when in a VPC."
  }
  assert {
    condition = alltrue([
      for p in [aws_iam_role_policy.generator.policy, aws_iam_role_policy.filter.policy] :
      alltrue([for s in jsondecode(p).Statement : alltrue([for a in s.Action : !startswith(a, "logs:")]) if s.Sid != "Logs"])
    ])
    error_message = "No logs action outside the per-log-group statement."
  }
}

run "empty_prefix_means_no_prefix" {
  command = plan
  variables {
    resource_prefix = ""
  }
  assert {
    condition = (
      aws_lambda_function.filter.function_name == "ECRImageActionEventFilter" &&
      aws_lambda_function.generator.function_name == "SociIndexGenerator" &&
      aws_cloudwatch_log_group.generator.name == "/aws/lambda/SociIndexGenerator" &&
      !startswith(aws_cloudwatch_event_rule.ecr_image_push.name, "-") &&
      !startswith(aws_iam_role.filter.name, "-") && !startswith(aws_iam_role.generator.name, "-")
    )
    error_message = "resource_prefix = \"\" must give names without a leading separator."
  }
}

run "reject_region_other_than_provider" {
  command = plan
  variables {
    region = "us-east-1"
  }
  expect_failures = [aws_cloudwatch_event_rule.ecr_image_push]
}

run "reject_account_other_than_provider" {
  command = plan
  variables {
    account_id = "210987654321"
  }
  expect_failures = [aws_cloudwatch_event_rule.ecr_image_push]
}

run "region_and_account_equal_to_provider" {
  command = plan
  variables {
    region     = "eu-west-1"
    account_id = "123456789012"
  }
  assert {
    condition     = output.ecr_repository_arns == ["arn:aws:ecr:eu-west-1:123456789012:repository/*"]
    error_message = "Inputs equal to the provider's values are accepted."
  }
}
