"""kcv.viz"""
