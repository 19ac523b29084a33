"""kcv.optim"""
