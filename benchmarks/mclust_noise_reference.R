# mclust's noise component on faithful, iris and chevron (mclust's simulated minefield: 350 mines
# among 754 uniform clutter points), from the same initial noise rows gaussmix's tests use.
#
# The initial noise rows are gaussmix's default (noise=True without noise_init): the rows where the
# uniform density 1/V (V = hypvol(X)) exceeds the density of one Gaussian fitted to every row (mean
# and maximum-likelihood covariance). Per data set this writes
#   <name>_start.csv      one row per data row: noise (1 = starts as noise) and, per K = 1..9, the
#                         hierarchical start mclustBIC cuts from hc() on the other rows (hc_K; 0 on
#                         noise rows): the starts gaussmix's tests hand to its EM;
#   <name>_noise_bic.csv  per K = 1..9 and structure: mclustBIC's BIC with noise (mclust's sign: higher
#                         is better; NA where mclust could not fit), and from the same start, me() run
#                         to a relative tolerance of 1e-10: BIC, log-likelihood, noise proportion
#                         (pro[K + 1]) and the parameter count nMclustParams(..., noise = TRUE);
# and noise_summary.csv: per data set hypvol and the volumes of its two boxes (coordinates,
# principal components), the initial noise rows, Mclust's chosen model with noise (its BIC, noise
# proportion, rows classified as noise) and, for chevron, the noise rows against the true labels.
#
#   Rscript benchmarks/mclust_noise_reference.R benchmarks/results/mclust/noise
#
# Writes benchmarks/data/chevron.csv (from data(chevron, package = "mclust")) too.
# R and mclust are NOT dependencies of gaussmix (Debian: apt-get install -y r-cran-mclust).
suppressPackageStartupMessages(library(mclust))
out <- commandArgs(trailingOnly = TRUE)[1]
data(chevron, package = "mclust")
write.csv(chevron, "benchmarks/data/chevron.csv", row.names = FALSE)
sets <- list(faithful = read.csv("../shared/data/faithful.csv"), iris = read.csv("../shared/data/iris.csv"),
             chevron = chevron)
tight <- emControl(tol = c(1e-10, 1e-10), itmax = c(100000L, 100000L))
log_box <- function(x) sum(log(apply(x, 2, function(column) diff(range(column)))))
summary_rows <- list()
for (name in names(sets)) {
  data <- as.matrix(sets[[name]][, sapply(sets[[name]], is.numeric), drop = FALSE])
  n <- nrow(data)
  Vinv <- hypvol(data, reciprocal = TRUE)
  covariance <- cov(data) * (n - 1) / n
  noise <- dmvnorm(data, colMeans(data), covariance) < Vinv
  if (!any(noise)) noise[which.min(dmvnorm(data, colMeans(data), covariance))] <- TRUE
  rows <- which(noise)
  # mclustBIC's start with noise: hc() on the other rows, cut at every K
  hcPairs <- hc(data = data[-rows, ], modelName = mclust.options("hcModelName"), use = mclust.options("hcUse"))
  classes <- hclass(hcPairs, 1:9)
  start <- data.frame(noise = as.integer(noise))
  for (k in 1:9) {
    labels <- integer(n)
    labels[-rows] <- classes[, as.character(k)]
    start[[paste0("hc_", k)]] <- labels
  }
  write.csv(start, file.path(out, paste0(name, "_start.csv")), row.names = FALSE)
  BIC <- mclustBIC(data, G = 1:9, initialization = list(noise = noise, hcPairs = hcPairs), verbose = FALSE)
  cells <- list()
  for (structure in colnames(BIC)) {
    for (k in 1:9) {
      z <- matrix(0, n, k + 1)
      z[-rows, 1:k] <- unmap(classes[, as.character(k)], groups = 1:k)
      z[rows, k + 1] <- 1
      fit <- suppressWarnings(me(data = data, modelName = structure, z = z, Vinv = Vinv, control = tight, warn = FALSE))
      ok <- !is.na(fit$loglik)
      parameters <- nMclustParams(structure, d = ncol(data), G = k, noise = TRUE)
      cells[[length(cells) + 1]] <- data.frame(
        K = k, structure = structure, bic = BIC[as.character(k), structure],
        bic_tight = if (ok) bic(structure, fit$loglik, n, ncol(data), k, noise = TRUE) else NA,
        loglik_tight = if (ok) fit$loglik else NA,
        noise_weight_tight = if (ok) fit$parameters$pro[k + 1] else NA,
        n_parameters = parameters)
    }
  }
  write.csv(do.call(rbind, cells), file.path(out, paste0(name, "_noise_bic.csv")), row.names = FALSE)
  model <- Mclust(data, G = 1:9, initialization = list(noise = noise, hcPairs = hcPairs), verbose = FALSE)
  classified_noise <- model$classification == 0
  truth <- if (name == "chevron") chevron$class == "noise" else rep(NA, n)
  summary_rows[[name]] <- data.frame(
    data = name, n = n, d = ncol(data), hypvol = 1 / Vinv, log_volume_coordinates = log_box(data),
    log_volume_principal = log_box(princomp(data)$scores), n_noise_init = length(rows),
    model = model$modelName, K = model$G, bic = model$bic, loglik = model$loglik,
    noise_weight = model$parameters$pro[model$G + 1], n_classified_noise = sum(classified_noise),
    true_noise = sum(truth), true_noise_classified_noise = sum(truth & classified_noise),
    mines_classified_noise = sum(!truth & classified_noise))
}
write.csv(do.call(rbind, summary_rows), file.path(out, "noise_summary.csv"), row.names = FALSE)
cat("mclust", as.character(packageVersion("mclust")), "\n")
print(do.call(rbind, summary_rows))
