provider "aws" {
  region = var.region
}

# The smallest deployment: the zips `cargo xtask publish` uploaded, everything else default
# (every push to every repository gets a SOCI index v2 tagged `<tag>-soci`).
module "soci_index_builder" {
  source = "../../"

  deployment_assets_bucket               = var.deployment_assets_bucket
  ecr_image_filter_lambda_asset_path     = var.ecr_image_filter_lambda_asset_path
  soci_index_generator_lambda_asset_path = var.soci_index_generator_lambda_asset_path

  ecr_image_filter_lambda_source_code_hash     = var.ecr_image_filter_lambda_source_code_hash
  soci_index_generator_lambda_source_code_hash = var.soci_index_generator_lambda_source_code_hash

  architecture = var.architecture
}
