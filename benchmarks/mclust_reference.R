# mclust's BIC table (K = 1..9 x the 14 structures) for one CSV file, written as CSV.
# Reference for benchmarks/compare_mclust.py; R and mclust are NOT dependencies of gaussmix.
#
#   Rscript benchmarks/mclust_reference.R data.csv out.csv [tight]
#
# With "tight", EM and the iterative M-steps run to a relative tolerance of 1e-10
# (mclust's default stops EM at a relative log-likelihood change of 1e-5, which on
# slowly converging fits leaves the BIC a few tenths short of the optimum it is heading to).
#
# Uses the numeric columns only. mclust's sign: BIC = 2 logL - p log n (higher is better).
suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1])
data <- data[, sapply(data, is.numeric), drop = FALSE]
# mclust's defaults: hierarchical (VVV) start on the SVD-transformed data, EM tolerance 1e-5.
control <- if (length(args) >= 3 && args[3] == "tight") {
  emControl(tol = c(1e-10, 1e-10), itmax = c(100000L, 100000L))
} else emControl()
bic <- mclustBIC(data, G = 1:9, modelNames = mclust.options("emModelNames"), control = control)
table <- as.data.frame(unclass(bic)[, , drop = FALSE])
table$K <- as.integer(rownames(table))
long <- reshape(table, direction = "long", varying = setdiff(names(table), "K"),
                v.names = "bic", timevar = "structure", times = setdiff(names(table), "K"), idvar = "K")
write.csv(long[order(long$structure, long$K), c("K", "structure", "bic")], args[2], row.names = FALSE)
cat("mclust", as.character(packageVersion("mclust")), "best:", names(summary(bic))[1], "\n")
