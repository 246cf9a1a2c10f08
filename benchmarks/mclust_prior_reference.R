# mclust's conjugate prior (priorControl(), Fraley & Raftery 2007) on faithful, iris and acidity:
# the reference numbers of gaussmix's GaussianMixture(prior=...) and select(prior=...).
#
#   Rscript benchmarks/mclust_prior_reference.R benchmarks/results/mclust/prior
#
# Writes, per data set:
#   <name>_bic.csv         mclustBIC(X, G = 1:9, prior = priorControl()) as a user runs it
#                          (mclust's sign: higher is better; mclust drops VEE, EVE, VVE and EVV
#                          under a prior, so they are not in the table);
#   <name>_bic_tight.csv   the same cells, EM run to a relative change of 1e-10 from the same
#                          start, so that a cell is the optimum its start leads to, not where
#                          mclust's default tolerance (1e-5) stopped;
#   <name>_partitions.csv  that start, mclustBIC's own: its hierarchical partition (hclass(hc(X), G),
#                          hc as mclust.options() say) or on one feature its quantile classes
#                          (mclust:::qclass(X, G)), for G = 2..9, one column per G, labels 1..G;
#   <name>_mstep.csv       the first MAP M-step of mclust's EM (me, stopped after one iteration)
#                          from the G = 3 partition (G = 1: mclust's mvn, as mclustBIC fits it), per
#                          structure: weights, means and covariances, with the default prior
#                          and (iris) with given hyperparameters (shrinkage 0.3, mean 1.5 in every
#                          column, dof 17, scale 1.7 or 0.5 I + 0.1), to 15 significant digits.
#                          (mclust's stand-alone mstep() differs from its EM's M-step for EEI, EVI
#                          and EEV under a prior; mclustBIC and Mclust use the EM's.)
#   <name>_prior.csv       defaultPrior's hyperparameters for G = 3 (the scale's entries).
#
# R and mclust are NOT dependencies of gaussmix (Debian: apt-get install -y r-cran-mclust).
suppressPackageStartupMessages(library(mclust))
out <- commandArgs(trailingOnly = TRUE)[1]
sets <- list(faithful = "../shared/data/faithful.csv", iris = "../shared/data/iris.csv",
             acidity = "benchmarks/data/acidity.csv")

# priorControl(functionName = "givenPrior"): hyperparameters a test can give gaussmix's Prior too
givenPrior <- function(data, G, modelName, ...) {
  p <- NCOL(data)
  scalar <- modelName %in% c("E", "V", "X", "EII", "VII", "XII", "EEI", "VEI", "EVI", "VVI", "XXI")
  list(shrinkage = 0.3, mean = rep(1.5, p), dof = 17, scale = if (scalar) 1.7 else diag(p) * 0.5 + 0.1)
}
assign("givenPrior", givenPrior, envir = globalenv())

long_table <- function(BIC, file) {
  table <- as.data.frame(unclass(BIC)[, , drop = FALSE])
  table$K <- as.integer(rownames(table))
  long <- reshape(table, direction = "long", varying = setdiff(names(table), "K"), v.names = "bic",
                  timevar = "structure", times = setdiff(names(table), "K"), idvar = "K")
  write.csv(long[order(long$structure, long$K), c("K", "structure", "bic")], file, row.names = FALSE)
}

# The first M-step of me() from z (mvn where z is NULL) as a data frame of rows
# (prior, structure, K, component, weight, means, sigma_i_j); the iterative M-steps run to 1e-15.
first_step <- emControl(tol = c(1e-15, 1e-15), itmax = c(1L, 100000L))
mstep_rows <- function(data, structure, z, prior, label) {
  p <- NCOL(data)
  G <- if (is.null(z)) 1 else ncol(z)
  fit <- if (G == 1) mvn(structure, data, prior = prior) else
    me(data, modelName = structure, z = z, prior = prior, control = first_step)
  parameters <- fit$parameters
  sigma <- parameters$variance[["sigma"]]
  if (is.null(sigma))
    sigma <- array(rep(parameters$variance$sigmasq, length.out = G), c(1, 1, G))
  means <- matrix(parameters$mean, nrow = p)
  rows <- data.frame(prior = label, structure = structure, K = G, component = seq_len(G),
                     weight = if (is.null(parameters$pro)) 1 else parameters$pro)
  for (j in seq_len(p)) rows[[sprintf("mean_%d", j)]] <- means[j, ]
  for (i in seq_len(p)) for (j in seq_len(p)) rows[[sprintf("sigma_%d_%d", i, j)]] <- sigma[i, j, ]
  rows
}

tight <- emControl(tol = c(1e-10, 1e-10), itmax = c(100000L, 100000L))
for (name in names(sets)) {
  data <- read.csv(sets[[name]])
  data <- data[, sapply(data, is.numeric), drop = FALSE]
  X <- if (ncol(data) == 1) data[[1]] else as.matrix(data)
  oneD <- ncol(data) == 1
  long_table(mclustBIC(X, G = 1:9, prior = priorControl(), verbose = FALSE),
             file.path(out, paste0(name, "_bic.csv")))
  long_table(mclustBIC(X, G = 1:9, prior = priorControl(), control = tight, verbose = FALSE),
             file.path(out, paste0(name, "_bic_tight.csv")))
  # mclustBIC's own start (mclust.options: hcModelName VVV, hcUse SVD; quantiles on one feature)
  partitions <- if (oneD) as.data.frame(sapply(2:9, function(G) mclust:::qclass(X, G))) else
    as.data.frame(hclass(hc(X, modelName = mclust.options("hcModelName"), use = mclust.options("hcUse")), 2:9))
  names(partitions) <- paste0("K", 2:9)
  write.csv(partitions, file.path(out, paste0(name, "_partitions.csv")), row.names = FALSE)

  structures <- if (oneD) c("E", "V") else c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
  families <- if (oneD) c("X") else c("XII", "XXI", "XXX")
  z <- unmap(partitions$K3)
  rows <- list()
  for (structure in structures) rows[[length(rows) + 1]] <- mstep_rows(X, structure, z, priorControl(), "default")
  for (family in families) rows[[length(rows) + 1]] <- mstep_rows(X, family, NULL, priorControl(), "default")
  if (name == "iris") {
    given <- priorControl(functionName = "givenPrior")
    for (structure in structures) rows[[length(rows) + 1]] <- mstep_rows(X, structure, z, given, "given")
    for (family in families) rows[[length(rows) + 1]] <- mstep_rows(X, family, NULL, given, "given")
  }
  write.csv(do.call(rbind, rows), file.path(out, paste0(name, "_mstep.csv")), row.names = FALSE)

  hyper <- list()
  for (structure in c(structures, families)) {
    prior <- defaultPrior(X, 3, structure)
    hyper[[structure]] <- data.frame(structure = structure, shrinkage = prior$shrinkage, dof = prior$dof,
                                     entry = seq_along(prior$scale), scale = as.vector(prior$scale))
  }
  write.csv(do.call(rbind, hyper), file.path(out, paste0(name, "_prior.csv")), row.names = FALSE)
}
cat("mclust", as.character(packageVersion("mclust")), "\n")
