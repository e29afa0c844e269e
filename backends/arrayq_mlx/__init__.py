"""arrayq's MLX backend (placeholder until the MLX backend issue lands): importing this
package does not import mlx."""
