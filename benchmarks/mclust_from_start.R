# mclust's EM (me) for one structure, started from given responsibilities; prints mclust's BIC.
# Used by benchmarks/compare_mclust.py --verify to check, in mclust's own code, that a
# gaussmix optimum is a genuine (and better) optimum of the same model.
#
#   Rscript benchmarks/mclust_from_start.R data.csv z.csv STRUCTURE
suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1])
data <- data[, sapply(data, is.numeric), drop = FALSE]
z <- as.matrix(read.csv(args[2], header = FALSE))
control <- emControl(tol = c(1e-10, 1e-10), itmax = c(100000L, 100000L))
fit <- me(modelName = args[3], data = data, z = z, control = control)
cat(bic(modelName = args[3], loglik = fit$loglik, n = nrow(data), d = ncol(data), G = ncol(z)), "\n")
