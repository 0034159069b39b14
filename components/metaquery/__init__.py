"""KFP component: UniPic2-MetaQuery training (issue #6)."""
