provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}

# The Terraform port's README usage, on this module: nothing to build or upload. The released
# zips are copied from the region's release bucket into your bucket, and their keys and hashes
# feed the main module.
module "copy_lambda_code" {
  source = "../../modules/copy-lambda-code"

  deployment_assets_bucket     = var.deployment_assets_bucket # create it before applying
  region                       = var.region
  deployment_assets_key_prefix = "path/to/my/artifacts/"

  # Optional: which release and build (default: this module's release, x86_64).
  release_version = var.release_version
  architecture    = var.architecture
}

module "soci_index_builder" {
  source = "../../"

  deployment_assets_bucket               = module.copy_lambda_code.asset_bucket
  ecr_image_filter_lambda_asset_path     = module.copy_lambda_code.ecr_image_filter_lambda_asset_path
  soci_index_generator_lambda_asset_path = module.copy_lambda_code.soci_index_generator_lambda_asset_path
  region                                 = var.region
  account_id                             = data.aws_caller_identity.current.account_id
  soci_repository_image_tag_filters      = ["repo1:tag1", "repo2:*"]
  resource_prefix                        = "my-soci-indexer"

  # What the port did not have: a new release redeploys the functions.
  ecr_image_filter_lambda_source_code_hash     = module.copy_lambda_code.ecr_image_filter_lambda_source_code_hash
  soci_index_generator_lambda_source_code_hash = module.copy_lambda_code.soci_index_generator_lambda_source_code_hash
  architecture                                 = module.copy_lambda_code.architecture
}
