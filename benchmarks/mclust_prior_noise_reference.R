# mclust's conjugate prior together with its noise component, on faithful and iris, from the
# starts of benchmarks/mclust_noise_reference.R (its <name>_start.csv: the initial noise rows and
# mclustBIC's hierarchical partition of the other rows for every K).
#
# Per data set, K = 1..5 and every structure mclust gives a prior: me() with
# prior = priorControl() (defaultPrior) and Vinv = 1 / hypvol(X), run to a relative tolerance of
# 1e-10; written to <name>_prior_noise.csv: BIC (mclust's sign: 2 loglik - npar log n, loglik at
# the MAP parameters, npar = nMclustParams(..., noise = TRUE)), log-likelihood and the noise
# proportion (NA where mclust could not fit).
#
#   Rscript benchmarks/mclust_prior_noise_reference.R benchmarks/results/mclust
#
# R and mclust are NOT dependencies of gaussmix (Debian: apt-get install -y r-cran-mclust).
suppressPackageStartupMessages(library(mclust))
root <- commandArgs(trailingOnly = TRUE)[1]
sets <- list(faithful = read.csv("../shared/data/faithful.csv"), iris = read.csv("../shared/data/iris.csv"))
structures <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
tight <- emControl(tol = c(1e-10, 1e-10), itmax = c(100000L, 100000L))
dir.create(file.path(root, "prior_noise"), showWarnings = FALSE)
for (name in names(sets)) {
  data <- as.matrix(sets[[name]][, sapply(sets[[name]], is.numeric), drop = FALSE])
  n <- nrow(data)
  start <- read.csv(file.path(root, "noise", paste0(name, "_start.csv")))
  rows <- which(start$noise == 1)
  Vinv <- hypvol(data, reciprocal = TRUE)
  cells <- list()
  for (structure in structures) {
    for (k in 1:5) {
      z <- matrix(0, n, k + 1)
      z[-rows, 1:k] <- unmap(start[[paste0("hc_", k)]][-rows], groups = 1:k)
      z[rows, k + 1] <- 1
      fit <- suppressWarnings(me(data = data, modelName = structure, z = z, prior = priorControl(),
                                 Vinv = Vinv, control = tight, warn = FALSE))
      ok <- !is.null(fit$loglik) && !is.na(fit$loglik)
      npar <- nMclustParams(structure, d = ncol(data), G = k, noise = TRUE)
      cells[[length(cells) + 1]] <- data.frame(
        K = k, structure = structure,
        bic = if (ok) 2 * fit$loglik - npar * log(n) else NA,
        loglik = if (ok) fit$loglik else NA,
        noise_weight = if (ok) fit$parameters$pro[k + 1] else NA)
    }
  }
  write.csv(do.call(rbind, cells), file.path(root, "prior_noise", paste0(name, "_prior_noise.csv")),
            row.names = FALSE)
}
