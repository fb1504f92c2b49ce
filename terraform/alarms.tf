################################################################################
# Optional CloudWatch alarms (create_alarms, off by default)
################################################################################

locals {
  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]
  # Metrics of the generator that mean an image went (or may go) without an index.
  generator_alarms = var.create_alarms ? {
    errors = {
      metric      = "Errors"
      description = "Invocations of ${local.generator_name} failed (each is retried, then sent to the on-failure destination)."
    }
    throttles = {
      metric      = "Throttles"
      description = "Invocations of ${local.generator_name} were throttled (reserved concurrency or the account limit)."
    }
    destination_delivery_failures = {
      metric      = "DestinationDeliveryFailures"
      description = "${local.generator_name} could not deliver failure records to its on-failure destination (permissions or a KMS key); those failures are lost."
    }
  } : {}
  failure_queue_name = var.soci_index_generator_on_failure_destination_arn == null ? "" : element(split(":", var.soci_index_generator_on_failure_destination_arn), 5)
}

resource "aws_cloudwatch_metric_alarm" "generator" {
  for_each = local.generator_alarms

  alarm_name          = "${local.generator_name}-${each.value.metric}"
  alarm_description   = each.value.description
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = aws_lambda_function.generator.function_name }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# The failure queue: a message there is an image that was not indexed. The decision is a plain
# boolean (the queue ARN may be unknown until the queue exists).
resource "aws_cloudwatch_metric_alarm" "failure_queue" {
  for_each = var.create_alarms && var.create_failure_queue_alarms ? {
    depth = {
      name        = "FailureQueueDepth"
      metric      = "ApproximateNumberOfMessagesVisible"
      threshold   = 1
      description = "Failed generator invocations are waiting in the on-failure queue."
    }
    age = {
      name        = "FailureQueueAge"
      metric      = "ApproximateAgeOfOldestMessage"
      threshold   = var.failure_queue_age_alarm_threshold_seconds
      description = "The oldest failed generator invocation in the on-failure queue is older than ${var.failure_queue_age_alarm_threshold_seconds} s (nobody is draining it)."
    }
  } : {}

  alarm_name          = "${local.generator_name}-${each.value.name}"
  alarm_description   = each.value.description
  namespace           = "AWS/SQS"
  metric_name         = each.value.metric
  dimensions          = { QueueName = local.failure_queue_name }
  statistic           = "Maximum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  lifecycle {
    precondition {
      condition     = var.soci_index_generator_on_failure_destination_arn != null && try(split(":", var.soci_index_generator_on_failure_destination_arn)[2] == "sqs", false)
      error_message = "create_failure_queue_alarms needs soci_index_generator_on_failure_destination_arn to be an SQS queue."
    }
  }
}
