# mclust's mixture discriminant analysis on iris and diabetes: MclustDA (per class, K in 1:5 and
# the 14 structures chosen by BIC) and EDDA (one component per class, one structure shared by the
# classes). Writes, per data set and mode, the chosen per-class models, the BIC tables, the
# training error and the 10-fold cross-validated error with FIXED folds (written too), so that
# tests compare gaussmix.GaussianMixtureClassifier with mclust without R.
#
#   Rscript benchmarks/mclust_da_reference.R benchmarks/results/mclust/da
#
# cvMclustDA(object, nfold) in mclust 6.0.0 takes no folds: it draws balancedFolds(class, nfold)
# itself. So the folds are drawn here the same way (set.seed(SEED); balancedFolds), written to
# folds_<data>.csv, and the CV loop below is cvMclustDA's own (each fold refits the full fit's
# per-class G and structure on the other folds, predicts with the full data's class
# proportions). cvMclustDA itself, run after the same set.seed, draws the same folds: its error
# is recorded as cv_error_cvMclustDA, and must equal cv_error.
#
# R and mclust are NOT dependencies of gaussmix (Debian: apt-get install -y r-cran-mclust).
suppressPackageStartupMessages(library(mclust))
out <- commandArgs(trailingOnly = TRUE)[1]
dir.create(out, recursive = TRUE, showWarnings = FALSE)
SEED <- 26
NFOLD <- 10

data(diabetes, package = "mclust")
write.csv(data.frame(class = diabetes$class), "benchmarks/data/diabetes_class.csv", row.names = FALSE)
iris <- read.csv("../shared/data/iris.csv")
sets <- list(
  iris = list(X = iris[, 1:4], class = factor(iris$Species)),
  diabetes = list(X = diabetes[, -1], class = factor(diabetes$class))
)

cv_error <- function(fit, X, class, folds) {
  # cvMclustDA's loop with given folds: G and modelName per class fixed to the full fit's.
  G <- lapply(fit$models, function(m) m$G)
  modelName <- lapply(fit$models, function(m) m$modelName)
  predicted <- factor(rep(NA, length(class)), levels = levels(class))
  for (fold in folds) {
    refit <- MclustDA(X[-fold, , drop = FALSE], class[-fold], G = G, modelNames = modelName,
                      modelType = fit$type, verbose = FALSE)
    predicted[fold] <- predict(refit, X[fold, , drop = FALSE], prop = fit$prop)$classification
  }
  mean(predicted != class)
}

summary_rows <- list(); model_rows <- list(); bic_rows <- list()
for (name in names(sets)) {
  X <- sets[[name]]$X; class <- sets[[name]]$class
  set.seed(SEED)
  folds <- mclust:::balancedFolds(class, nfolds = NFOLD)
  fold_of_row <- integer(length(class))
  for (i in seq_along(folds)) fold_of_row[folds[[i]]] <- i
  write.csv(data.frame(fold = fold_of_row), file.path(out, paste0("folds_", name, ".csv")), row.names = FALSE)
  for (type in c("MclustDA", "EDDA")) {
    fit <- MclustDA(X, class, modelType = type, verbose = FALSE)
    training_error <- mean(predict(fit)$classification != class)
    set.seed(SEED)
    cv_mclust <- cvMclustDA(fit, nfold = NFOLD, verbose = FALSE)$ce
    summary_rows[[paste(name, type)]] <- data.frame(
      data = name, mode = type, n = length(class), bic = fit$bic, loglik = fit$loglik, df = fit$df,
      training_error = training_error, cv_error = cv_error(fit, X, class, folds),
      cv_error_cvMclustDA = cv_mclust, seed = SEED, nfold = NFOLD)
    for (label in names(fit$models)) {
      m <- fit$models[[label]]
      model_rows[[paste(name, type, label)]] <- data.frame(
        data = name, mode = type, class = label, n = m$n, model = m$modelName, K = m$G)
      # The BIC table of the class (MclustDA) or of the shared structures (EDDA), mclust's sign.
      table <- as.matrix(m$BIC)
      if (type == "EDDA") table <- matrix(m$BIC, nrow = 1, dimnames = list("1", names(m$BIC)))
      if (type == "EDDA" && label != names(fit$models)[1]) next
      for (g in rownames(table)) for (model in colnames(table))
        bic_rows[[length(bic_rows) + 1]] <- data.frame(
          data = name, mode = type, class = if (type == "EDDA") "(all)" else label,
          K = as.integer(g), model = model, bic = table[g, model])
    }
  }
}
write.csv(do.call(rbind, summary_rows), file.path(out, "summary.csv"), row.names = FALSE)
write.csv(do.call(rbind, model_rows), file.path(out, "models.csv"), row.names = FALSE)
write.csv(do.call(rbind, bic_rows), file.path(out, "bic.csv"), row.names = FALSE)
writeLines(capture.output(sessionInfo()), file.path(out, "session.txt"))
