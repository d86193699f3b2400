# FiGKD: KL divergence between the high-frequency (wavelet detail) parts of
# teacher and student logits, on top of the student's cross-entropy.
distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(logits=dict(type='Logits')),
    teacher_recorders=dict(logits=dict(type='Logits')),
    distill_losses=dict(
        loss_figkd=dict(
            type='FiGKDLoss',
            tau=4.0,
            loss_weight=1.0,
            wavelet='haar',
            level=1,
            mode='periodization',
            low_weight=0.0,
            high_weights=1.0)),
    loss_forward_mappings=dict(
        loss_figkd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))
