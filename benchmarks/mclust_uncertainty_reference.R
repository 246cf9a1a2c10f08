# mclust's per-row uncertainty and its 1-D distribution utilities, as reference numbers for
# gaussmix's GaussianMixture.uncertainty / cdf / quantile (tests/test_uncertainty.py; no R there).
#
#   Rscript benchmarks/mclust_uncertainty_reference.R benchmarks/results/mclust/uncertainty
#
# Run from the repository root (faithful is read from ../shared/data). R and mclust are NOT
# dependencies of gaussmix (Debian: apt-get install -y r-cran-mclust). Every number is written
# with 17 significant digits so the tests compare mclust's doubles, not a rounded print of them.
suppressPackageStartupMessages(library(mclust))
out <- commandArgs(trailingOnly = TRUE)[1]
dir.create(out, recursive = TRUE, showWarnings = FALSE)

write17 <- function(frame, name) {
  frame[] <- lapply(frame, function(column) if (is.double(column)) sprintf("%.17g", column) else column)
  write.csv(frame, file.path(out, name), row.names = FALSE, quote = FALSE)
}

# The fitted parameters as (component, weight, mean per feature, sigma_i_j) rows.
write_params <- function(fit, features, name) {
  sigma <- fit$parameters$variance[["sigma"]]  # [[ ]]: $ would match sigmasq
  if (is.null(sigma))  # univariate models keep variances only (one for E, G for V)
    sigma <- array(rep(fit$parameters$variance$sigmasq, length.out = fit$G), c(1, 1, fit$G))
  means <- t(matrix(fit$parameters$mean, nrow = length(features)))
  colnames(means) <- features
  params <- data.frame(component = seq_len(fit$G), weight = fit$parameters$pro, means)
  for (i in seq_along(features)) for (j in seq_along(features))
    params[[sprintf("sigma_%d_%d", i, j)]] <- sigma[i, j, ]
  write17(params, paste0(name, "_params.csv"))
}

# Uncertainty 1 - max_k z_nk. Mclust's own z (and so fit$uncertainty) comes from its last E-step,
# one M-step before fit$parameters; the E-step at the parameters gives the z that belongs to them.
write_uncertainty <- function(fit, data, name) {
  at <- estep(data = data, modelName = fit$modelName, parameters = fit$parameters)
  z <- at$z
  frame <- data.frame(row = seq_len(nrow(z)))
  for (k in seq_len(ncol(z))) frame[[paste0("z_", k)]] <- z[, k]
  frame$uncertainty <- 1 - apply(z, 1, max)
  frame$mclust_fit_uncertainty <- fit$uncertainty  # the lagged one, for the record only
  write17(frame, paste0(name, "_uncertainty.csv"))
  data.frame(data = name, model = fit$modelName, K = fit$G, rows = nrow(z),
             max_abs_lag = max(abs(frame$uncertainty - frame$mclust_fit_uncertainty)))
}

# acidity: one feature, so mclust's density object gives cdfMclust and quantileMclust.
acidity <- read.csv("benchmarks/data/acidity.csv")$acidity
dens <- densityMclust(acidity, G = 1:9, verbose = FALSE, plot = FALSE)
write_params(dens, "acidity", "acidity")
summary_rows <- list(write_uncertainty(dens, acidity, "acidity"))

grid <- cdfMclust(dens)  # mclust's default: 100 points over the data range extended by 10%
at_data <- cdfMclust(dens, data = acidity)  # sorted data
write17(rbind(data.frame(where = "grid", x = grid$x, cdf = grid$y),
              data.frame(where = "data", x = at_data$x, cdf = at_data$y)), "acidity_cdf.csv")

p <- c(0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1)
# quantileMclust sets q = -Inf / Inf for p = 0 / 1, but only after uniroot has stopped with
# "lower < upper is not fulfilled" on the infinite bracket whenever G > 1: ask it for 0 < p < 1.
q <- ifelse(p == 0, -Inf, ifelse(p == 1, Inf, NA))
q[is.na(q)] <- quantileMclust(dens, p[is.na(q)])
# quantileMclust stops uniroot at tol = sqrt(.Machine$double.eps) (about 1.5e-8 in x); the same
# root with uniroot's tolerance at its floor shows how far that is from the exact inverse.
tight <- sapply(p, function(pi) {
  if (pi <= 0) return(-Inf)
  if (pi >= 1) return(Inf)
  r <- qnorm(pi, dens$parameters$mean, sqrt(rep(dens$parameters$variance$sigmasq, length.out = dens$G)))
  uniroot(function(x) cdfMclust(dens, x)$y - pi, interval = range(r), tol = 1e-15, maxiter = 10000)$root
})
residual <- ifelse(is.finite(q), sapply(q, function(x) cdfMclust(dens, x)$y) - p, 0)
write17(data.frame(p = p, quantile = q, quantile_tight = tight, cdf_residual = residual),
        "acidity_quantile.csv")

# faithful: two features (EEE, 3 components as Mclust chooses); uncertainty only.
faithful <- read.csv("../shared/data/faithful.csv")
fit <- Mclust(faithful, G = 1:9, verbose = FALSE)
write_params(fit, names(faithful), "faithful")
summary_rows[[2]] <- write_uncertainty(fit, as.matrix(faithful), "faithful")

summary <- do.call(rbind, summary_rows)
summary$mclust <- as.character(packageVersion("mclust"))
write.csv(summary, file.path(out, "summary.csv"), row.names = FALSE)
print(summary)
print(data.frame(p = p, quantile = q, tight = tight, diff = q - tight, residual = residual))
