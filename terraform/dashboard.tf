################################################################################
# Optional CloudWatch dashboard of the generator's metrics (create_metrics_dashboard)
################################################################################

locals {
  # The generator's default namespace (DEFAULT_NAMESPACE in
  # lambdas/soci-index-generator/src/metrics.rs).
  metrics_namespace = coalesce(var.metrics_namespace, "SOCI/IndexGenerator")

  # Every metric the generator emits and every Reason of LayersLeftOut: the generator's test
  # tests/dashboard.rs checks both lists against its code (METRICS, LeftOut::ALL), so the
  # dashboard never shows a metric that is not emitted or misses one that is.
  dashboard_metrics          = ["ImagesIndexed", "ImagesFailed", "ImageSeconds", "LayersIndexed", "LayersLeftOut", "LayerBytes", "LayerSeconds", "DownloadThroughput", "IndexThroughput", "ZtocCacheHits", "ZtocCacheMisses"]
  dashboard_left_out_reasons = ["too_small", "unsupported_media_type", "unindexable", "rejected"]

  # [namespace, name, FunctionName, <function>]: a metric in CloudWatch's dashboard syntax.
  dashboard_metric = { for m in local.dashboard_metrics : m => [local.metrics_namespace, m, "FunctionName", local.generator_name] }

  dashboard_widgets = [
    {
      title = "Images indexed and failed"
      stat  = "Sum"
      metrics = [
        local.dashboard_metric["ImagesIndexed"],
        local.dashboard_metric["ImagesFailed"],
      ]
    },
    {
      title = "Layers indexed and left out (by reason)"
      stat  = "Sum"
      metrics = concat(
        [local.dashboard_metric["LayersIndexed"]],
        [for r in local.dashboard_left_out_reasons : concat(local.dashboard_metric["LayersLeftOut"], ["Reason", r])],
      )
    },
    {
      title = "Seconds per image and per layer (p90)"
      stat  = "p90"
      metrics = [
        local.dashboard_metric["ImageSeconds"],
        local.dashboard_metric["LayerSeconds"],
      ]
    },
    {
      title = "Layer bytes indexed"
      stat  = "Sum"
      metrics = [
        local.dashboard_metric["LayerBytes"],
      ]
    },
    {
      title = "Download and index throughput per layer (bytes/s, average)"
      stat  = "Average"
      metrics = [
        local.dashboard_metric["DownloadThroughput"],
        local.dashboard_metric["IndexThroughput"],
      ]
    },
    {
      title = "zTOC cache hits and misses (layers)"
      stat  = "Sum"
      metrics = [
        local.dashboard_metric["ZtocCacheHits"],
        local.dashboard_metric["ZtocCacheMisses"],
      ]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "generator" {
  count = var.create_metrics_dashboard ? 1 : 0

  dashboard_name = local.generator_name
  dashboard_body = jsonencode({
    widgets = [
      for i, w in local.dashboard_widgets : {
        type   = "metric"
        x      = (i % 2) * 12
        y      = floor(i / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = w.title
          region  = local.region
          view    = "timeSeries"
          stacked = false
          period  = 300
          stat    = w.stat
          metrics = w.metrics
        }
      }
    ]
  })

  lifecycle {
    precondition {
      condition     = var.emit_metrics
      error_message = "create_metrics_dashboard shows the generator's metrics: it needs emit_metrics = true."
    }
  }
}
