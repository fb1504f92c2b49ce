# Where every test "is": region, account and partition, so every ARN is deterministic.
# (`name` is set too, though the module reads `id`, which provider 6.x does not deprecate.)

mock_data "aws_partition" {
  defaults = {
    partition  = "aws"
    dns_suffix = "amazonaws.com"
  }
}

mock_data "aws_region" {
  defaults = {
    id   = "eu-west-1"
    name = "eu-west-1"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}
