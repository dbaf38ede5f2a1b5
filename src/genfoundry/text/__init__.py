"""Text models: prompt formats shared by SFT training and text serving."""
