"""The statistics of reader studies: pure functions on numbers and labels.

Nothing here imports Django or knows about studies, rows or pages: stats
(proportions, tests, kappa), kappa (general kappa: weights, Fleiss' SE and z),
mrmc (AUC, Obuchowski-Rockette), regression (clustered logistic GEE) and power
(sample size by simulation). The report package assembles them into a report.
"""
