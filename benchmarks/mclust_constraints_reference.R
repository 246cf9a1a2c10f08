# mclust's BIC table with equal mixing proportions (equalPro) on faithful and iris, from its
# default (hierarchical) start: mclustBIC(X, G = 1:9, control = emControl(equalPro = TRUE, ...)).
# Writes, per data set, the table in long form (mclust's sign: higher is better; NA where
# mclust could not fit) and the chosen model with its BIC. EM and the iterative M-steps are
# capped at 10000 iterations (mclust's default: no cap): some equalPro cells of iris otherwise
# ran for more than half an hour without converging. Cells that converge are unaffected.
#
#   Rscript benchmarks/mclust_constraints_reference.R benchmarks/results/mclust/constraints
#
# R and mclust are NOT dependencies of gaussmix (Debian: apt-get install -y r-cran-mclust).
suppressPackageStartupMessages(library(mclust))
out <- commandArgs(trailingOnly = TRUE)[1]
sets <- list(faithful = "../shared/data/faithful.csv", iris = "../shared/data/iris.csv")
chosen <- list()
control <- emControl(equalPro = TRUE, itmax = c(10000L, 10000L))
long_table <- function(BIC, file) {
  table <- as.data.frame(unclass(BIC)[, , drop = FALSE])
  table$K <- as.integer(rownames(table))
  long <- reshape(table, direction = "long", varying = setdiff(names(table), "K"), v.names = "bic",
                  timevar = "structure", times = setdiff(names(table), "K"), idvar = "K")
  write.csv(long[order(long$structure, long$K), c("K", "structure", "bic")], file, row.names = FALSE)
}
for (name in names(sets)) {
  data <- read.csv(sets[[name]])
  data <- data[, sapply(data, is.numeric), drop = FALSE]
  BIC <- mclustBIC(data, G = 1:9, control = control, verbose = FALSE)
  long_table(BIC, file.path(out, paste0(name, "_equalpro_bic.csv")))
  best <- summary(BIC, data)
  chosen[[name]] <- data.frame(data = name, model = best$modelName, K = best$G, bic = best$bic,
                               loglik = best$loglik)
}
write.csv(do.call(rbind, chosen), file.path(out, "equalpro_chosen.csv"), row.names = FALSE)
cat("mclust", as.character(packageVersion("mclust")), "\n")
print(do.call(rbind, chosen))
