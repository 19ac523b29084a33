"""kcv.serving"""
