# The zTOC cache (off by default): when asked for, one ECR repository with an expiry policy, the
# generator's pull and push on it only, its name in both functions' environments, and its
# pushes left out of the EventBridge rule; off, nothing of it exists.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  deployment_assets_bucket               = "assets-bucket"
  ecr_image_filter_lambda_asset_path     = "x86_64/ecr-image-filter.zip"
  soci_index_generator_lambda_asset_path = "x86_64/soci-index-generator.zip"
}

run "off_by_default" {
  command = plan
  assert {
    condition     = length(aws_ecr_repository.ztoc_cache) == 0 && length(aws_ecr_lifecycle_policy.ztoc_cache) == 0
    error_message = "No cache repository unless asked for."
  }
  assert {
    condition     = output.ztoc_cache_repository_name == null
    error_message = "No cache, no name."
  }
  assert {
    condition = alltrue([
      !contains(keys(aws_lambda_function.generator.environment[0].variables), "ztoc_cache_repository"),
      !contains(keys(aws_lambda_function.filter.environment[0].variables), "ztoc_cache_repository"),
    ])
    error_message = "ztoc_cache_repository must be absent from both environments unless asked for."
  }
  assert {
    condition     = !strcontains(aws_iam_role_policy.generator.policy, "ZtocCache")
    error_message = "No cache permission unless asked for."
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern).detail == { "action-type" = ["PUSH"], result = ["SUCCESS"] }
    error_message = "Off, the pattern is the push pattern it always was: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }
}

run "on" {
  command = plan
  variables {
    resource_prefix            = "Acme"
    ztoc_cache                 = true
    ztoc_cache_expiration_days = 14
    index_replicated_images    = true
  }
  assert {
    condition     = aws_ecr_repository.ztoc_cache[0].name == "acme-soci-ztoc-cache" && aws_ecr_repository.ztoc_cache[0].image_tag_mutability == "MUTABLE"
    error_message = "The cache repository is <prefix>-soci-ztoc-cache in lowercase, tags mutable (a corrupt entry is rewritten)."
  }
  assert {
    condition     = output.ztoc_cache_repository_name == "acme-soci-ztoc-cache"
    error_message = "The output names the cache repository."
  }
  assert {
    condition = jsondecode(aws_ecr_lifecycle_policy.ztoc_cache[0].policy).rules[0] == {
      rulePriority = 1
      description  = "zTOC cache entries expire 14 days after they were written; the next image that needs one writes it again."
      selection    = { tagStatus = "any", countType = "sinceImagePushed", countUnit = "days", countNumber = 14 }
      action       = { type = "expire" }
    }
    error_message = "Entries expire after ztoc_cache_expiration_days: ${aws_ecr_lifecycle_policy.ztoc_cache[0].policy}"
  }
  assert {
    condition = alltrue([
      aws_lambda_function.generator.environment[0].variables["ztoc_cache_repository"] == "acme-soci-ztoc-cache",
      aws_lambda_function.filter.environment[0].variables["ztoc_cache_repository"] == "acme-soci-ztoc-cache",
    ])
    error_message = "Both functions must get the cache repository's name."
  }
  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s if s.Sid == "ZtocCache"] == [{
      Sid    = "ZtocCache"
      Effect = "Allow"
      Action = [
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
      ]
      Resource = ["arn:aws:ecr:eu-west-1:123456789012:repository/acme-soci-ztoc-cache"]
    }]
    error_message = "The generator gets pull and push on the cache repository, nothing more: ${aws_iam_role_policy.generator.policy}"
  }
  assert {
    condition = [for p in jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern)["$or"] : p.detail["repository-name"]] == [
      [{ "anything-but" = ["acme-soci-ztoc-cache"] }],
      [{ "anything-but" = ["acme-soci-ztoc-cache"] }],
    ]
    error_message = "Pushes and replications into the cache repository must not match the rule: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }
}

run "named" {
  command = plan
  variables {
    ztoc_cache                 = true
    ztoc_cache_repository_name = "shared/ztoc-cache"
  }
  assert {
    condition     = aws_ecr_repository.ztoc_cache[0].name == "shared/ztoc-cache"
    error_message = "ztoc_cache_repository_name names the repository."
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern).detail == { "action-type" = ["PUSH"], result = ["SUCCESS"], "repository-name" = [{ "anything-but" = ["shared/ztoc-cache"] }] }
    error_message = "Unexpected event pattern: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }
}

run "expiration_must_be_whole_days" {
  command = plan
  variables {
    ztoc_cache                 = true
    ztoc_cache_expiration_days = 0
  }
  expect_failures = [var.ztoc_cache_expiration_days]
}
