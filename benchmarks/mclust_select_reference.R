# mclust's model selection on the data sets of the model-selection issue, as a new user runs it:
# Mclust(X, G = 1:9) with its defaults. Writes, per data set, the chosen model, its BIC and ICL
# (mclust's sign: higher is better), the BIC table and the seconds Mclust took (one thread).
# Also writes mclust's own copies of diabetes and acidity as CSV, so that tests need no R.
#
#   Rscript benchmarks/mclust_select_reference.R benchmarks/results/mclust/select
#
# R and mclust are NOT dependencies of gaussmix (Debian: apt-get install -y r-cran-mclust).
suppressPackageStartupMessages(library(mclust))
out <- commandArgs(trailingOnly = TRUE)[1]
data(diabetes, package = "mclust"); data(acidity, package = "mclust")
write.csv(diabetes[, -1], "benchmarks/data/diabetes.csv", row.names = FALSE)
write.csv(data.frame(acidity = acidity), "benchmarks/data/acidity.csv", row.names = FALSE)
sets <- list(faithful = "../shared/data/faithful.csv", iris = "../shared/data/iris.csv",
             diabetes = "benchmarks/data/diabetes.csv", acidity = "benchmarks/data/acidity.csv")
summary_rows <- list()
for (name in names(sets)) {
  data <- read.csv(sets[[name]])
  data <- data[, sapply(data, is.numeric), drop = FALSE]
  seconds <- system.time(fit <- Mclust(data, G = 1:9, verbose = FALSE))[["elapsed"]]
  icl_value <- icl(fit)
  # mclust's loglik, BIC and z are of its last E-step, one M-step before its parameters: the
  # criteria of the parameters themselves come from mclust's E-step at them.
  at <- estep(data = if (ncol(data) == 1) data[[1]] else as.matrix(data), modelName = fit$modelName, parameters = fit$parameters)
  bic_at <- bic(fit$modelName, at$loglik, nrow(data), ncol(data), fit$G)
  icl_at <- bic_at + 2 * sum(log(apply(at$z, 1, max)))
  # The chosen fit's parameters, so that tests compute mclust's criteria from them without R.
  sigma <- fit$parameters$variance[["sigma"]]  # [[ ]]: $ would match sigmasq
  if (is.null(sigma))  # univariate models keep variances only
    sigma <- array(rep(fit$parameters$variance$sigmasq, length.out = fit$G), c(1, 1, fit$G))
  means <- t(matrix(fit$parameters$mean, nrow = ncol(data)))
  colnames(means) <- names(data)
  params <- data.frame(component = seq_len(fit$G), weight = fit$parameters$pro, means)
  for (i in seq_len(ncol(data))) for (j in seq_len(ncol(data)))
    params[[sprintf("sigma_%d_%d", i, j)]] <- sigma[i, j, ]
  write.csv(params, file.path(out, paste0(name, "_params.csv")), row.names = FALSE)
  summary_rows[[name]] <- data.frame(data = name, rows = nrow(data), columns = ncol(data),
                                     model = fit$modelName, K = fit$G, bic = fit$bic, icl = icl_value,
                                     loglik = fit$loglik, loglik_at_params = at$loglik,
                                     bic_at_params = bic_at, icl_at_params = icl_at, seconds = seconds)
  table <- as.data.frame(unclass(fit$BIC)[, , drop = FALSE])
  table$K <- as.integer(rownames(table))
  long <- reshape(table, direction = "long", varying = setdiff(names(table), "K"), v.names = "bic",
                  timevar = "structure", times = setdiff(names(table), "K"), idvar = "K")
  write.csv(long[order(long$structure, long$K), c("K", "structure", "bic")],
            file.path(out, paste0(name, "_bic.csv")), row.names = FALSE)
}
write.csv(do.call(rbind, summary_rows), file.path(out, "chosen.csv"), row.names = FALSE)
cat("mclust", as.character(packageVersion("mclust")), "\n")
print(do.call(rbind, summary_rows))
