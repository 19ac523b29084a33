"""kcv.losses"""
