# The event sources and the index tag cleanup: the rule's rendered event pattern for each
# combination of index_pull_through_cache_images, index_replicated_images and index_tag_cleanup,
# and the permission and setting the cleanup adds. The shapes are those of the Amazon ECR user
# guide, "Amazon ECR events and EventBridge": a pull through cache event has `sync-status` (no
# `result`, no `action-type`), a replication event `action-type` REPLICATE and `result`.
# Mocked AWS provider: no credentials, no network.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  deployment_assets_bucket               = "assets-bucket"
  ecr_image_filter_lambda_asset_path     = "x86_64/ecr-image-filter.zip"
  soci_index_generator_lambda_asset_path = "x86_64/soci-index-generator.zip"
}

run "pushes_only_by_default" {
  command = plan

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern) == {
      source        = ["aws.ecr"]
      "detail-type" = ["ECR Image Action"]
      account       = ["123456789012"]
      region        = ["eu-west-1"]
      detail        = { "action-type" = ["PUSH"], result = ["SUCCESS"] }
    }
    error_message = "With every option off the pattern must be the push pattern it always was: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }

  assert {
    condition     = !contains(keys(aws_lambda_function.generator.environment[0].variables), "index_tag_cleanup")
    error_message = "The cleanup setting must be absent when index_tag_cleanup is off."
  }

  assert {
    condition     = !contains(flatten([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Action]), "ecr:BatchDeleteImage")
    error_message = "The generator must not be allowed to delete images when index_tag_cleanup is off."
  }
}

run "pull_through_cache" {
  command = plan

  variables {
    index_pull_through_cache_images = true
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern) == {
      source  = ["aws.ecr"]
      account = ["123456789012"]
      region  = ["eu-west-1"]
      "$or" = [
        { "detail-type" = ["ECR Image Action"], detail = { "action-type" = ["PUSH"], result = ["SUCCESS"] } },
        { "detail-type" = ["ECR Pull Through Cache Action"], detail = { "sync-status" = ["SUCCESS"] } },
      ]
    }
    error_message = "Unexpected event pattern: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }
}

run "replication" {
  command = plan

  variables {
    index_replicated_images = true
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern) == {
      source  = ["aws.ecr"]
      account = ["123456789012"]
      region  = ["eu-west-1"]
      "$or" = [
        { "detail-type" = ["ECR Image Action"], detail = { "action-type" = ["PUSH"], result = ["SUCCESS"] } },
        { "detail-type" = ["ECR Replication Action"], detail = { "action-type" = ["REPLICATE"], result = ["SUCCESS"] } },
      ]
    }
    error_message = "Unexpected event pattern: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }
}

run "pull_through_cache_and_replication" {
  command = plan

  variables {
    index_pull_through_cache_images = true
    index_replicated_images         = true
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern) == {
      source  = ["aws.ecr"]
      account = ["123456789012"]
      region  = ["eu-west-1"]
      "$or" = [
        { "detail-type" = ["ECR Image Action"], detail = { "action-type" = ["PUSH"], result = ["SUCCESS"] } },
        { "detail-type" = ["ECR Pull Through Cache Action"], detail = { "sync-status" = ["SUCCESS"] } },
        { "detail-type" = ["ECR Replication Action"], detail = { "action-type" = ["REPLICATE"], result = ["SUCCESS"] } },
      ]
    }
    error_message = "Unexpected event pattern: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }

  assert {
    condition     = !contains(flatten([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Action]), "ecr:BatchDeleteImage")
    error_message = "Indexing more sources must not add a delete permission."
  }
}

run "index_tag_cleanup" {
  command = plan

  variables {
    index_tag_cleanup = true
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern) == {
      source        = ["aws.ecr"]
      "detail-type" = ["ECR Image Action"]
      account       = ["123456789012"]
      region        = ["eu-west-1"]
      detail        = { "action-type" = ["PUSH", "DELETE"], result = ["SUCCESS"] }
    }
    error_message = "The cleanup must add successful deletes to the image action pattern: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }

  assert {
    condition     = aws_lambda_function.generator.environment[0].variables["index_tag_cleanup"] == "true"
    error_message = "The generator must get index_tag_cleanup = true."
  }

  assert {
    condition     = !contains(keys(aws_lambda_function.filter.environment[0].variables), "index_tag_cleanup")
    error_message = "The filter forwards deletes either way; the setting is the generator's."
  }

  assert {
    condition = toset(one([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Action if s.Sid == "EcrRepositories"])) == toset([
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchCheckLayerAvailability",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:BatchDeleteImage",
    ])
    error_message = "The cleanup adds exactly ecr:BatchDeleteImage to the repository statement."
  }

  assert {
    condition     = length([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s if contains(s.Action, "ecr:BatchDeleteImage")]) == 1 && one([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Resource if s.Sid == "EcrRepositories"]) == ["arn:aws:ecr:eu-west-1:123456789012:repository/*"]
    error_message = "ecr:BatchDeleteImage must be granted once, on the filtered repositories only."
  }
}

run "everything_on" {
  command = plan

  variables {
    index_pull_through_cache_images   = true
    index_replicated_images           = true
    index_tag_cleanup                 = true
    soci_repository_image_tag_filters = ["docker-hub/*:*", "team/app:*"]
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.ecr_image_push.event_pattern)["$or"] == [
      { "detail-type" = ["ECR Image Action"], detail = { "action-type" = ["PUSH", "DELETE"], result = ["SUCCESS"] } },
      { "detail-type" = ["ECR Pull Through Cache Action"], detail = { "sync-status" = ["SUCCESS"] } },
      { "detail-type" = ["ECR Replication Action"], detail = { "action-type" = ["REPLICATE"], result = ["SUCCESS"] } },
    ]
    error_message = "Unexpected event pattern: ${aws_cloudwatch_event_rule.ecr_image_push.event_pattern}"
  }

  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.generator.policy).Statement : s.Resource if s.Sid == "EcrRepositories"]) == ["arn:aws:ecr:eu-west-1:123456789012:repository/docker-hub/*", "arn:aws:ecr:eu-west-1:123456789012:repository/team/app"]
    error_message = "The delete permission covers the filtered repositories, not every repository."
  }
}
