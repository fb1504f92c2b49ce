# The memory budget and the parallel download settings: unset by default (the generator sizes
# them from its memory), passed through as whole numbers when set, refused out of the ranges the
# generator accepts (a value it refuses would fail every invocation at start).

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  deployment_assets_bucket               = "assets-bucket"
  ecr_image_filter_lambda_asset_path     = "x86_64/ecr-image-filter.zip"
  soci_index_generator_lambda_asset_path = "x86_64/soci-index-generator.zip"
}

run "defaults_leave_the_generator_to_size_them" {
  command = plan
  assert {
    condition = length(setintersection(
      keys(aws_lambda_function.generator.environment[0].variables),
      ["memory_budget_mib", "parallel_fetch_min_size", "parallel_fetch_chunk_size", "parallel_fetch_concurrency"],
    )) == 0
    error_message = "Unset inputs must not reach the generator, got ${jsonencode(aws_lambda_function.generator.environment[0].variables)}."
  }
}

run "settings_reach_the_generator_as_whole_numbers" {
  command = plan
  variables {
    memory_budget_mib          = 3008
    parallel_fetch_min_size    = 134217728
    parallel_fetch_chunk_size  = 16777216
    parallel_fetch_concurrency = 1
  }
  assert {
    condition = (
      aws_lambda_function.generator.environment[0].variables["memory_budget_mib"] == "3008" &&
      aws_lambda_function.generator.environment[0].variables["parallel_fetch_min_size"] == "134217728" &&
      aws_lambda_function.generator.environment[0].variables["parallel_fetch_chunk_size"] == "16777216" &&
      aws_lambda_function.generator.environment[0].variables["parallel_fetch_concurrency"] == "1"
    )
    error_message = "The settings must reach the generator as the integers it parses, got ${jsonencode(aws_lambda_function.generator.environment[0].variables)}."
  }
  assert {
    condition = length(setintersection(
      keys(aws_lambda_function.filter.environment[0].variables),
      ["memory_budget_mib", "parallel_fetch_min_size", "parallel_fetch_chunk_size", "parallel_fetch_concurrency"],
    )) == 0
    error_message = "The filter reads none of them."
  }
}

run "a_chunk_size_the_generator_refuses_is_refused" {
  command = plan
  variables {
    parallel_fetch_chunk_size = 4096
  }
  expect_failures = [var.parallel_fetch_chunk_size]
}

run "a_concurrency_the_generator_refuses_is_refused" {
  command = plan
  variables {
    parallel_fetch_concurrency = 65
  }
  expect_failures = [var.parallel_fetch_concurrency]
}

run "a_fractional_budget_is_refused" {
  command = plan
  variables {
    memory_budget_mib = 100.5
  }
  expect_failures = [var.memory_budget_mib]
}

run "a_budget_below_the_generator_minimum_is_refused" {
  command = plan
  variables {
    memory_budget_mib = 32
  }
  expect_failures = [var.memory_budget_mib]
}
