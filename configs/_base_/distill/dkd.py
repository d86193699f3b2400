# Decoupled KD: MMRazor's DKDLoss at its ImageNet defaults (alpha=1,
# beta=0.5, tau=1). DKD needs the labels: recorded as the second input of the
# student head's loss module (cls_score, target).
distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(
        logits=dict(type='Logits'),
        gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
    teacher_recorders=dict(logits=dict(type='Logits')),
    distill_losses=dict(
        loss_dkd=dict(
            type='DKDLoss',
            tau=1.0,
            alpha=1.0,
            beta=0.5,
            loss_weight=1.0,
            reduction='batchmean')),
    loss_forward_mappings=dict(
        loss_dkd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'),
            gt_labels=dict(
                recorder='gt_labels', from_student=True, data_idx=1))))
