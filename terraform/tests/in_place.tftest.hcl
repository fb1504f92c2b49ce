# The in-place mode (off by default) reaches the generator only when asked for, and never the
# filter, whose loop guards do not change: the generator recognises the pushes the mode causes.

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
    condition     = !contains(keys(aws_lambda_function.generator.environment[0].variables), "index_in_place")
    error_message = "index_in_place must be absent from the generator's environment unless asked for."
  }
}

run "on" {
  command = plan
  variables {
    index_in_place = true
  }
  assert {
    condition     = aws_lambda_function.generator.environment[0].variables["index_in_place"] == "true"
    error_message = "The generator must get index_in_place = true."
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.filter.environment[0].variables), "index_in_place")
    error_message = "The filter has no in-place setting."
  }
}
