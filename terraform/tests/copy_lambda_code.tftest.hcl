# modules/copy-lambda-code with a mocked provider: which objects it copies, from where, and the
# hashes it hands to the main module, read from the release manifest.

mock_provider "aws" {
  mock_data "aws_s3_object" {
    defaults = {
      body = <<-EOT
        {"version": "1.2.3", "artifacts": [
          {"function": "ecr-image-filter", "architecture": "x86_64", "key": "soci-index-builder/1.2.3/ecr-image-filter-x86_64.zip", "size": 10, "sha256": "aa", "sha256_base64": "ZmlsdGVyLXg4Ng=="},
          {"function": "soci-index-generator", "architecture": "x86_64", "key": "soci-index-builder/1.2.3/soci-index-generator-x86_64.zip", "size": 20, "sha256": "bb", "sha256_base64": "Z2VuLXg4Ng=="},
          {"function": "ecr-image-filter", "architecture": "arm64", "key": "soci-index-builder/1.2.3/ecr-image-filter-arm64.zip", "size": 30, "sha256": "cc", "sha256_base64": "ZmlsdGVyLWFybQ=="},
          {"function": "soci-index-generator", "architecture": "arm64", "key": "soci-index-builder/1.2.3/soci-index-generator-arm64.zip", "size": 40, "sha256": "dd", "sha256_base64": "Z2VuLWFybQ=="}
        ]}
      EOT
    }
  }
}

variables {
  region                       = "eu-central-1"
  deployment_assets_bucket     = "my-soci-index-assets-bucket"
  deployment_assets_key_prefix = "path/to/my/artifacts/"
  release_version              = "1.2.3"
}

run "copies_the_release_into_the_bucket" {
  command = plan
  module {
    source = "./modules/copy-lambda-code"
  }
  assert {
    condition     = data.aws_s3_object.manifest.bucket == "soci-lambda-releases-eu-central-1" && data.aws_s3_object.manifest.key == "soci-index-builder/1.2.3/manifest.json"
    error_message = "The manifest is read from the region's release bucket."
  }
  assert {
    condition = (
      aws_s3_object_copy.lambda["ecr_image_filter"].source == "soci-lambda-releases-eu-central-1/soci-index-builder/1.2.3/ecr-image-filter-x86_64.zip" &&
      aws_s3_object_copy.lambda["soci_index_generator"].source == "soci-lambda-releases-eu-central-1/soci-index-builder/1.2.3/soci-index-generator-x86_64.zip"
    )
    error_message = "Each zip is copied from the key the manifest names."
  }
  assert {
    condition = (
      output.asset_bucket == "my-soci-index-assets-bucket" &&
      output.ecr_image_filter_lambda_asset_path == "path/to/my/artifacts/1.2.3/ecr-image-filter-x86_64.zip" &&
      output.soci_index_generator_lambda_asset_path == "path/to/my/artifacts/1.2.3/soci-index-generator-x86_64.zip" &&
      aws_s3_object_copy.lambda["ecr_image_filter"].bucket == "my-soci-index-assets-bucket"
    )
    error_message = "The copies land under the key prefix, in the caller's bucket, and are the port's outputs."
  }
  assert {
    condition     = aws_s3_object_copy.lambda["ecr_image_filter"].checksum_algorithm == "SHA256"
    error_message = "The copy must be checksummed so it can be checked against the manifest."
  }
}

run "hashes_for_the_architecture" {
  command = plan
  module {
    source = "./modules/copy-lambda-code"
  }
  variables {
    architecture               = "arm64"
    source_bucket_name_pattern = "mirror-{region}-releases"
  }
  assert {
    condition     = output.ecr_image_filter_lambda_source_code_hash == "ZmlsdGVyLWFybQ==" && output.soci_index_generator_lambda_source_code_hash == "Z2VuLWFybQ==" && output.architecture == "arm64"
    error_message = "The hashes are the manifest's, for the chosen architecture."
  }
  assert {
    condition     = aws_s3_object_copy.lambda["soci_index_generator"].source == "mirror-eu-central-1-releases/soci-index-builder/1.2.3/soci-index-generator-arm64.zip"
    error_message = "The source bucket follows the pattern."
  }
}

run "reject_a_manifest_of_another_release" {
  command = plan
  module {
    source = "./modules/copy-lambda-code"
  }
  variables {
    release_version = "1.2.4"
  }
  expect_failures = [aws_s3_object_copy.lambda]
}

run "copies_encrypted_with_the_callers_key" {
  command = plan
  module {
    source = "./modules/copy-lambda-code"
  }
  variables {
    kms_key_arn = "arn:aws:kms:eu-central-1:123456789012:key/cccc"
  }
  assert {
    condition = alltrue([
      for c in aws_s3_object_copy.lambda :
      c.kms_key_id == "arn:aws:kms:eu-central-1:123456789012:key/cccc" && c.server_side_encryption == "aws:kms"
    ])
    error_message = "The copies are encrypted with the given key."
  }
}
