"""kcv.layers"""
