# mclust's bootstrap likelihood-ratio test for the number of components:
# mclustBootstrapLRT(faithful, modelName = "EEE", maxG = 3, nboot = 199) and the same on iris's
# numeric columns with VEV. mclust's maxG = 3 tests K = 1, 2, 3 against K + 1 (it fits up to
# 4 components): gaussmix.bootstrap_lrt(X, ..., max_components=4). Writes per data set the
# observed statistics and p-values (one row per K) and the bootstrap statistics (one column per K).
#
#   Rscript benchmarks/mclust_lrt_reference.R benchmarks/results/mclust/lrt
#
# R and mclust are NOT dependencies of gaussmix (Debian: apt-get install -y r-cran-mclust).
suppressPackageStartupMessages(library(mclust))
out <- commandArgs(trailingOnly = TRUE)[1]
set.seed(20250125)
runs <- list(faithful = list(path = "../shared/data/faithful.csv", model = "EEE"),
             iris = list(path = "../shared/data/iris.csv", model = "VEV"))
for (name in names(runs)) {
  data <- read.csv(runs[[name]]$path)
  data <- data[, sapply(data, is.numeric), drop = FALSE]
  seconds <- system.time(
    lrt <- mclustBootstrapLRT(data, modelName = runs[[name]]$model, maxG = 3, nboot = 199, verbose = FALSE)
  )[["elapsed"]]
  write.csv(data.frame(K = lrt$G, model = lrt$modelName, obs = lrt$obs, p_value = lrt$p.value,
                       nboot = nrow(lrt$boot), seconds = seconds),
            file.path(out, paste0(name, "_lrt.csv")), row.names = FALSE)
  boot <- as.data.frame(lrt$boot)
  names(boot) <- paste0("K", lrt$G)
  write.csv(boot, file.path(out, paste0(name, "_lrt_boot.csv")), row.names = FALSE)
  print(lrt)
}
cat("mclust", as.character(packageVersion("mclust")), "\n")
