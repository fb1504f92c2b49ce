################################################################################
# Copies one release's Lambda zips from the (per-region) release bucket into your bucket.
#
# A release, as `cargo xtask publish --release <version>` uploads it:
#   <source_key_prefix><version>/manifest.json
#   <source_key_prefix><version>/<function>-<architecture>.zip      (one per function and arch)
# The manifest lists each zip's key, size and sha256; the hashes become the main module's
# `*_source_code_hash` inputs, so a new release redeploys the functions.
################################################################################

locals {
  source_bucket  = replace(var.source_bucket_name_pattern, "{region}", var.region)
  source_release = "${var.source_key_prefix}${var.release_version}/"
  target_release = "${var.deployment_assets_key_prefix}${var.release_version}/"

  manifest = jsondecode(data.aws_s3_object.manifest.body)
  functions = {
    ecr_image_filter     = "ecr-image-filter"
    soci_index_generator = "soci-index-generator"
  }
  # function (module-input spelling) -> its manifest entry for the architecture, or null.
  artifacts = {
    for input, function in local.functions : input => one([
      for a in try(local.manifest.artifacts, []) : a
      if a.function == function && a.architecture == var.architecture
    ])
  }
}

# The manifest is JSON (`application/json`), so the data source returns its body.
data "aws_s3_object" "manifest" {
  bucket = local.source_bucket
  key    = "${local.source_release}manifest.json"
}

resource "aws_s3_object_copy" "lambda" {
  for_each = local.functions

  bucket = var.deployment_assets_bucket
  key    = "${local.target_release}${each.value}-${var.architecture}.zip"
  source = "${local.source_bucket}/${try(local.artifacts[each.key].key, "missing")}"
  # S3 computes the copy's SHA-256, checked below against the manifest.
  checksum_algorithm = "SHA256"
  # Your key when given, else the bucket's default encryption.
  kms_key_id             = var.kms_key_arn
  server_side_encryption = var.kms_key_arn == null ? null : "aws:kms"
  tags                   = var.tags

  lifecycle {
    precondition {
      condition     = local.artifacts[each.key] != null
      error_message = "Release ${var.release_version} in s3://${local.source_bucket}/${local.source_release} has no ${each.value} zip for ${var.architecture} (manifest.json lists: ${join(", ", [for a in try(local.manifest.artifacts, []) : "${a.function}/${a.architecture}"])})."
    }
    precondition {
      condition     = try(local.manifest.version, "") == var.release_version
      error_message = "s3://${local.source_bucket}/${local.source_release}manifest.json describes release ${try(local.manifest.version, "(none)")}, not ${var.release_version}."
    }
    postcondition {
      condition     = self.checksum_sha256 == local.artifacts[each.key].sha256_base64
      error_message = "The copy of ${self.source} has SHA-256 ${self.checksum_sha256}, but the release manifest says ${local.artifacts[each.key].sha256_base64}."
    }
  }
}
