################################################################################
# Optional zTOC cache (ztoc_cache): one ECR repository where the generator keeps every zTOC it
# built, keyed by layer digest, span size, compression and build tool, so that a layer shared
# by many images (a base layer) is downloaded and indexed once per account and region.
################################################################################

locals {
  # ECR repository names are lowercase; the prefix may not be.
  ztoc_cache_name = var.ztoc_cache ? coalesce(var.ztoc_cache_repository_name, lower("${local.name_prefix}soci-ztoc-cache")) : null
  ztoc_cache_arn  = var.ztoc_cache ? "arn:${local.partition}:ecr:${local.region}:${local.account_id}:repository/${local.ztoc_cache_name}" : null

  # Both functions get the name: the generator reads and writes the cache, the filter never
  # indexes its pushes (the EventBridge rule already leaves them out; the filter is the guard
  # for events that reach it another way, such as a backfill).
  ztoc_cache_environment = var.ztoc_cache ? { ztoc_cache_repository = local.ztoc_cache_name } : {}

  # The pushes of cache entries are the generator's own output: left out of the image action
  # and replication sub-patterns (pull through cache repositories are never the cache).
  ztoc_cache_event_detail = var.ztoc_cache ? { "repository-name" = [{ "anything-but" = [local.ztoc_cache_name] }] } : {}

  # Pull and push on the cache repository only; nothing to list, describe or delete there
  # (the lifecycle policy expires entries).
  ztoc_cache_statements = var.ztoc_cache ? [{
    Sid      = "ZtocCache"
    Effect   = "Allow"
    Action   = local.ecr_repository_actions
    Resource = [local.ztoc_cache_arn]
  }] : []
}

resource "aws_ecr_repository" "ztoc_cache" {
  #checkov:skip=CKV_AWS_51:Tags must stay mutable: an entry found corrupt is rewritten under its key tag by the next build.
  #checkov:skip=CKV_AWS_136:The entries are zTOCs derived from images already in this account, encrypted at rest with ECR's AES-256; a customer key would need a key policy for ECR the caller owns.
  #checkov:skip=CKV_AWS_163:The entries are zTOC artifacts, not images: there is nothing to scan.
  count = var.ztoc_cache ? 1 : 0

  name                 = local.ztoc_cache_name
  image_tag_mutability = "MUTABLE"
  # A cache: every entry can be rebuilt, so destroying the module must not fail on them.
  force_delete = true
  tags         = var.tags

  image_scanning_configuration {
    scan_on_push = false
  }
}

resource "aws_ecr_lifecycle_policy" "ztoc_cache" {
  count = var.ztoc_cache ? 1 : 0

  repository = aws_ecr_repository.ztoc_cache[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "zTOC cache entries expire ${var.ztoc_cache_expiration_days} days after they were written; the next image that needs one writes it again."
      selection = {
        tagStatus   = "any"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = var.ztoc_cache_expiration_days
      }
      action = { type = "expire" }
    }]
  })
}
