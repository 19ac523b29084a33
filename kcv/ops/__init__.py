"""kcv.ops"""
