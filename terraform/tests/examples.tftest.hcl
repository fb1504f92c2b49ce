# Every example plans from scratch: nothing exists yet, so every attribute the provider computes
# (queue and key ARNs, ...) is unknown at plan time, as on a first `terraform apply`.

mock_provider "aws" {
  source = "./tests/mocks"
  # A release manifest as `cargo xtask publish --release 0.1.0` writes it (copy-lambda-code).
  mock_data "aws_s3_object" {
    defaults = {
      body = <<-EOT
        {"version": "0.1.0", "artifacts": [
          {"function": "ecr-image-filter", "architecture": "x86_64", "key": "soci-index-builder/0.1.0/ecr-image-filter-x86_64.zip", "size": 10, "sha256": "aa", "sha256_base64": "ZmlsdGVy"},
          {"function": "soci-index-generator", "architecture": "x86_64", "key": "soci-index-builder/0.1.0/soci-index-generator-x86_64.zip", "size": 20, "sha256": "bb", "sha256_base64": "Z2VuZXJhdG9y"}
        ]}
      EOT
    }
  }
  # The mock would invent a random string; the assertions read the statements themselves.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  deployment_assets_bucket                     = "assets-bucket"
  ecr_image_filter_lambda_asset_path           = "soci-index-builder/ecr-image-filter.zip"
  soci_index_generator_lambda_asset_path       = "soci-index-builder/soci-index-generator.zip"
  ecr_image_filter_lambda_source_code_hash     = "ZmlsdGVy"
  soci_index_generator_lambda_source_code_hash = "Z2VuZXJhdG9y"
}

run "basic_plans_from_scratch" {
  command = plan
  module {
    source = "./examples/basic"
  }
  variables {
    region = "eu-west-1"
  }
}

run "complete_plans_from_scratch" {
  command = plan
  module {
    source = "./examples/complete"
  }
  variables {
    region                   = "eu-west-1"
    permissions_boundary_arn = "arn:aws:iam::123456789012:policy/Boundary"
    subnet_ids               = ["subnet-1"]
    security_group_ids       = ["sg-1"]
  }
  assert {
    condition     = data.aws_iam_policy_document.kms.statement[1].principals == toset([{ type = "Service", identifiers = toset(["logs.eu-west-1.amazonaws.com"]) }])
    error_message = "The key policy must name the CloudWatch Logs service principal of the region."
  }
}

# aws-cn: the service principal carries the partition's DNS suffix (logs.<region>.amazonaws.com.cn).
run "complete_in_china" {
  command = plan
  module {
    source = "./examples/complete"
  }
  override_data {
    target = data.aws_partition.current
    values = {
      partition  = "aws-cn"
      dns_suffix = "amazonaws.com.cn"
    }
  }
  override_data {
    target = module.soci_index_builder.data.aws_partition.current
    values = {
      partition  = "aws-cn"
      dns_suffix = "amazonaws.com.cn"
    }
  }
  override_data {
    target = module.soci_index_builder.data.aws_region.current
    values = {
      id   = "cn-north-1"
      name = "cn-north-1"
    }
  }
  variables {
    region                   = "cn-north-1"
    permissions_boundary_arn = "arn:aws-cn:iam::123456789012:policy/Boundary"
    subnet_ids               = ["subnet-1"]
    security_group_ids       = ["sg-1"]
  }
  assert {
    condition     = data.aws_iam_policy_document.kms.statement[1].principals == toset([{ type = "Service", identifiers = toset(["logs.cn-north-1.amazonaws.com.cn"]) }])
    error_message = "In aws-cn the CloudWatch Logs principal is logs.<region>.amazonaws.com.cn."
  }
}

run "copy_lambda_code_plans_from_scratch" {
  command = plan
  module {
    source = "./examples/copy-lambda-code"
  }
  variables {
    region                   = "eu-west-1"
    deployment_assets_bucket = "my-soci-index-assets-bucket"
  }
  assert {
    condition     = output.soci_index_generator_lambda_source_code_hash == "Z2VuZXJhdG9y" && output.release_version == "0.1.0"
    error_message = "The example deploys the module's release, pinned by the manifest's hashes (the apply against moto checks the functions' code)."
  }
}
