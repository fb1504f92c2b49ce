# The generator's metrics (EMF, on by default), their dashboard (off by default) and the xattr
# optimisation (off by default): the inputs reach the generator's environment only when they
# differ from its defaults, and the dashboard shows the generator's metrics.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  deployment_assets_bucket               = "assets-bucket"
  ecr_image_filter_lambda_asset_path     = "x86_64/ecr-image-filter.zip"
  soci_index_generator_lambda_asset_path = "x86_64/soci-index-generator.zip"
}

run "defaults_leave_the_environment_alone_and_create_no_dashboard" {
  command = plan
  assert {
    condition     = length(aws_cloudwatch_dashboard.generator) == 0
    error_message = "No dashboard unless asked for."
  }
  assert {
    condition = length(setintersection(
      keys(aws_lambda_function.generator.environment[0].variables),
      ["disable_xattrs", "emit_metrics", "metrics_namespace"],
    )) == 0
    error_message = "Defaults are the generator's own: no disable_xattrs, emit_metrics or metrics_namespace in its environment, got ${jsonencode(aws_lambda_function.generator.environment[0].variables)}."
  }
}

run "settings_reach_the_generator" {
  command = plan
  variables {
    disable_xattrs    = true
    emit_metrics      = false
    metrics_namespace = "Acme/SOCI"
  }
  assert {
    condition     = aws_lambda_function.generator.environment[0].variables["disable_xattrs"] == "true"
    error_message = "disable_xattrs = true must reach the generator."
  }
  assert {
    condition     = aws_lambda_function.generator.environment[0].variables["emit_metrics"] == "false" && aws_lambda_function.generator.environment[0].variables["metrics_namespace"] == "Acme/SOCI"
    error_message = "emit_metrics and metrics_namespace must reach the generator, got ${jsonencode(aws_lambda_function.generator.environment[0].variables)}."
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.filter.environment[0].variables), "disable_xattrs") && !contains(keys(aws_lambda_function.filter.environment[0].variables), "metrics_namespace")
    error_message = "These are the generator's settings, not the filter's."
  }
}

run "dashboard_shows_every_metric_of_the_generator" {
  command = plan
  variables {
    resource_prefix          = "acme"
    create_metrics_dashboard = true
    metrics_namespace        = "Acme/SOCI"
  }
  assert {
    condition     = length(aws_cloudwatch_dashboard.generator) == 1 && aws_cloudwatch_dashboard.generator[0].dashboard_name == "acme-SociIndexGenerator"
    error_message = "One dashboard, named like the generator."
  }
  assert {
    # Every metric line: the namespace, a metric name, and this generator's FunctionName.
    condition = alltrue(flatten([
      for w in jsondecode(aws_cloudwatch_dashboard.generator[0].dashboard_body).widgets : [
        for m in w.properties.metrics : m[0] == "Acme/SOCI" && m[2] == "FunctionName" && m[3] == "acme-SociIndexGenerator"
      ]
    ]))
    error_message = "Each metric is in the configured namespace, for this generator: ${aws_cloudwatch_dashboard.generator[0].dashboard_body}"
  }
  assert {
    # The names the generator emits (lambdas/soci-index-generator/src/metrics.rs METRICS; the
    # generator's tests/dashboard.rs keeps dashboard.tf's list equal to it).
    condition = toset(flatten([
      for w in jsondecode(aws_cloudwatch_dashboard.generator[0].dashboard_body).widgets : [for m in w.properties.metrics : m[1]]
    ])) == toset(["ImagesIndexed", "ImagesFailed", "ImageSeconds", "LayersIndexed", "LayersLeftOut", "LayerBytes", "LayerSeconds", "DownloadThroughput", "IndexThroughput", "ZtocCacheHits", "ZtocCacheMisses"])
    error_message = "The dashboard shows exactly the generator's metrics."
  }
  assert {
    condition = toset(flatten([
      for w in jsondecode(aws_cloudwatch_dashboard.generator[0].dashboard_body).widgets : [for m in w.properties.metrics : m[5] if length(m) == 6 && m[1] == "LayersLeftOut"]
    ])) == toset(["too_small", "unsupported_media_type", "unindexable", "rejected"])
    error_message = "LayersLeftOut appears once per reason."
  }
}

run "dashboard_with_the_default_namespace" {
  command = plan
  variables {
    create_metrics_dashboard = true
  }
  assert {
    condition     = alltrue(flatten([for w in jsondecode(aws_cloudwatch_dashboard.generator[0].dashboard_body).widgets : [for m in w.properties.metrics : m[0] == "SOCI/IndexGenerator"]]))
    error_message = "Without metrics_namespace the dashboard reads the generator's default namespace."
  }
}

run "dashboard_without_metrics_is_refused" {
  command = plan
  variables {
    create_metrics_dashboard = true
    emit_metrics             = false
  }
  expect_failures = [aws_cloudwatch_dashboard.generator]
}

run "reserved_namespace_is_refused" {
  command = plan
  variables {
    metrics_namespace = "AWS/Lambda"
  }
  expect_failures = [var.metrics_namespace]
}
